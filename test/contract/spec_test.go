package contract

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/go-openapi/loads"
	"github.com/go-openapi/spec"

	"github.com/sessioncert/sessioncert/restapi"
)

// operation is one operation of the spec with what the checker needs of it.
type operation struct {
	id       string
	method   string // upper case
	template string // full path template, e.g. /edge/client/v1/x/{id}
	segments []string
	secured  bool // needs a zt-session token

	// responses are the declared responses by status, with every $ref
	// resolved.
	responses map[int]*spec.Response
}

// literals counts the template's fixed segments: when two templates match a
// path, the one with more fixed segments is the more specific.
func (o *operation) literals() int {
	n := 0
	for _, s := range o.segments {
		if !isParam(s) {
			n++
		}
	}
	return n
}

// statuses returns the declared statuses in ascending order.
func (o *operation) statuses() []int {
	out := make([]int, 0, len(o.responses))
	for s := range o.responses {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

// hasQuery reports whether the operation declares the query parameter name.
func (o *operation) hasQuery(params []spec.Parameter, name string) bool {
	for _, p := range params {
		if p.In == "query" && p.Name == name {
			return true
		}
	}
	return false
}

// apiSpec is the analysed, fully expanded spec and its operations.
type apiSpec struct {
	ops []*operation // ordered by template, then method

	// lists are the operations that page with limit and offset: the
	// contract requires pagination in their meta.
	lists map[string]bool
}

// embeddedSpec is the spec compiled into the server, expanded once: the
// expansion is the slow part of a load, and an apiSpec is never changed
// after it is built.
var embeddedSpec = sync.OnceValues(func() (*apiSpec, error) {
	return loadSpec(restapi.SwaggerJSON)
})

// loadSpec analyses a Swagger 2.0 JSON document and expands every $ref, so
// that each response carries its full schema.
func loadSpec(raw []byte) (*apiSpec, error) {
	doc, err := loads.Analyzed(json.RawMessage(raw), "")
	if err != nil {
		return nil, fmt.Errorf("analyse spec: %w", err)
	}
	return expandSpec(doc)
}

// loadSpecFile reads a spec file, JSON or YAML, and expands it.
func loadSpecFile(path string) (*apiSpec, error) {
	doc, err := loads.Spec(path)
	if err != nil {
		return nil, fmt.Errorf("load spec %s: %w", path, err)
	}
	return expandSpec(doc)
}

func expandSpec(doc *loads.Document) (*apiSpec, error) {
	expanded, err := doc.Expanded()
	if err != nil {
		return nil, fmt.Errorf("expand spec: %w", err)
	}
	return indexSpec(expanded.Spec())
}

func indexSpec(sw *spec.Swagger) (*apiSpec, error) {
	s := &apiSpec{lists: map[string]bool{}}
	base := strings.TrimSuffix(sw.BasePath, "/")
	if sw.Paths == nil {
		return nil, fmt.Errorf("spec has no paths")
	}
	for tmpl, item := range sw.Paths.Paths {
		full := base + tmpl
		for method, op := range pathOperations(item) {
			if op.ID == "" {
				return nil, fmt.Errorf("%s %s has no operationId", method, full)
			}
			o := &operation{
				id:        op.ID,
				method:    method,
				template:  full,
				segments:  strings.Split(strings.Trim(full, "/"), "/"),
				secured:   secured(op.Security, sw.Security),
				responses: map[int]*spec.Response{},
			}
			if op.Responses == nil {
				return nil, fmt.Errorf("%s declares no responses", op.ID)
			}
			for code, resp := range op.Responses.StatusCodeResponses {
				o.responses[code] = &resp
			}
			params := append(append([]spec.Parameter{}, item.Parameters...), op.Parameters...)
			if o.hasQuery(params, "limit") && o.hasQuery(params, "offset") {
				s.lists[o.id] = true
			}
			s.ops = append(s.ops, o)
		}
	}
	sort.Slice(s.ops, func(i, j int) bool {
		if s.ops[i].template != s.ops[j].template {
			return s.ops[i].template < s.ops[j].template
		}
		return s.ops[i].method < s.ops[j].method
	})
	return s, nil
}

func pathOperations(item spec.PathItem) map[string]*spec.Operation {
	all := map[string]*spec.Operation{
		http.MethodGet: item.Get, http.MethodPut: item.Put, http.MethodPost: item.Post,
		http.MethodDelete: item.Delete, http.MethodOptions: item.Options, http.MethodHead: item.Head,
		http.MethodPatch: item.Patch,
	}
	for m, op := range all {
		if op == nil {
			delete(all, m)
		}
	}
	return all
}

// secured reports whether an operation needs a credential: its own security
// list when it has one (an empty list means none), else the global one.
func secured(own, global []map[string][]string) bool {
	reqs := global
	if own != nil {
		reqs = own
	}
	for _, r := range reqs {
		if len(r) > 0 {
			return true
		}
	}
	return false
}

// match finds the operation of a request by method and path template. The
// path is the escaped path, so that an encoded slash inside an id stays one
// segment, as it does for a router that matches escaped paths. When no
// operation matches, pathKnown tells whether the path exists for another
// method.
func (s *apiSpec) match(method, escapedPath string) (op *operation, pathKnown bool) {
	segs := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	for _, o := range s.ops {
		if !segmentsMatch(o.segments, segs) {
			continue
		}
		pathKnown = true
		if o.method != method {
			continue
		}
		if op == nil || o.literals() > op.literals() {
			op = o
		}
	}
	return op, pathKnown
}

func segmentsMatch(tmpl, segs []string) bool {
	if len(tmpl) != len(segs) {
		return false
	}
	for i, t := range tmpl {
		if isParam(t) {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if t != segs[i] {
			return false
		}
	}
	return true
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// statusText is a status with its reason phrase, for messages.
func statusText(code int) string { return strconv.Itoa(code) + " " + http.StatusText(code) }
