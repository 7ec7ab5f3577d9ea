//go:build tools

// Package tools pins the code generator and linter that the Makefile runs,
// so every machine builds exactly the same versions.
package tools

import (
	_ "github.com/go-swagger/go-swagger/cmd/swagger"
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
