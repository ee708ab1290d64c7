package app

import (
	"context"
	"fmt"
	"io"
)

func evalCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("eval: not implemented yet")
}
