package promov1

import _ "embed"

// OpenAPIv2 is the generated OpenAPI (Swagger 2.0) document of the REST API.
// The gateway serves it so web clients can generate their own bindings.
//
//go:embed promo.swagger.json
var OpenAPIv2 []byte
