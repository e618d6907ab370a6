package ststest_test

import (
	"testing"

	"github.com/opensts/sts/internal/ststest"
)

func TestNewStore(t *testing.T) {
	s := ststest.NewStore(t)
	if err := s.Health(t.Context()); err != nil {
		t.Fatalf("Health() = %v, want nil", err)
	}
}
