package app

import "github.com/opensts/sts/internal/config"

// CheckTrust exposes planTrust to the external tests.
func CheckTrust(cfg config.Config) error {
	_, err := planTrust(cfg)
	return err
}

// NewConsents exposes the consents service serve gives the pages.
var NewConsents = newConsents
