package handlers_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/go-openapi/loads"

	"github.com/sessioncert/sessioncert/pkg/handlers"
	"github.com/sessioncert/sessioncert/restapi"
	"github.com/sessioncert/sessioncert/restapi/operations"
)

// TestEveryOperationHasAHandler fails when an operation of swagger.yml is
// served by the generated "not implemented" default instead of a handler of
// this package: adding an operation to the spec without its handler fails
// here, not in production.
func TestEveryOperationHasAHandler(t *testing.T) {
	spec, err := loads.Analyzed(restapi.SwaggerJSON, "")
	if err != nil {
		t.Fatal(err)
	}
	api := operations.NewSessioncertAPI(spec)
	handlers.New(handlers.Config{}).Register(api)
	if err := api.Validate(); err != nil {
		t.Fatalf("api.Validate: %v", err)
	}

	v := reflect.ValueOf(api).Elem()
	n := 0
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !strings.HasSuffix(f.Name, "Handler") || f.Type.Kind() != reflect.Interface {
			continue
		}
		n++
		h := v.Field(i).Elem()
		if !h.IsValid() {
			t.Errorf("%s is nil", f.Name)
			continue
		}
		if pkg := h.Type().PkgPath(); pkg != "github.com/sessioncert/sessioncert/pkg/handlers" {
			t.Errorf("%s is served by %s (%s), not by pkg/handlers", f.Name, h.Type(), pkg)
		}
	}
	ops := 0
	for _, methods := range spec.Analyzer.Operations() {
		ops += len(methods)
	}
	if n != ops {
		t.Errorf("found %d handler fields for %d operations in the spec", n, ops)
	}
}
