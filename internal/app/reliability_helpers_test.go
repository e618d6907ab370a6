package app_test

import (
	"time"

	"github.com/opensts/sts/internal/config"
)

func setCallTimeout(c *config.Config, d time.Duration) { c.Storage.CallTimeout = d }
func callTimeout(c config.Config) time.Duration        { return c.Storage.CallTimeoutOrDefault() }
