package schedule

import "time"

var timeNow = time.Now
