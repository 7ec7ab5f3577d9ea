// Package apidocs renders the API reference page from the embedded
// swagger.yml: every operation with its method, path, parameters and
// responses, in one self-contained HTML page with inline styles and no
// script, so it loads from no other host.
package apidocs

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"sort"
	"strings"

	"github.com/go-openapi/loads"
	"github.com/go-openapi/spec"
)

type param struct {
	Name, In, Type, Description string
	Required                    bool
}

type response struct {
	Code, Description, Schema string
}

type operation struct {
	ID, Method, Path, Summary, Description, Anchor string
	Secured                                        bool
	Params                                         []param
	Responses                                      []response
}

type group struct {
	Tag, Description, Anchor string
	Operations               []operation
}

type page struct {
	Title, Version, Description string
	Groups                      []group
}

// Render returns the HTML page for the spec (Swagger 2.0 JSON or YAML).
func Render(specDoc []byte) ([]byte, error) {
	doc, err := loads.Analyzed(specDoc, "")
	if err != nil {
		return nil, fmt.Errorf("apidocs: load spec: %w", err)
	}
	sw := doc.Spec()
	p := page{Title: sw.Info.Title, Version: sw.Info.Version, Description: sw.Info.Description}

	byTag := map[string]*group{}
	var order []string
	for _, t := range sw.Tags {
		byTag[t.Name] = &group{Tag: t.Name, Description: t.Description, Anchor: anchor("tag-" + t.Name)}
		order = append(order, t.Name)
	}
	paths := make([]string, 0, len(sw.Paths.Paths))
	for path := range sw.Paths.Paths {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		item := sw.Paths.Paths[path]
		for _, mo := range []struct {
			method string
			op     *spec.Operation
		}{
			{"GET", item.Get}, {"POST", item.Post}, {"PUT", item.Put}, {"PATCH", item.Patch},
			{"DELETE", item.Delete},
		} {
			if mo.op == nil {
				continue
			}
			o := toOperation(sw, mo.method, path, item.Parameters, mo.op)
			tag := "Other"
			if len(mo.op.Tags) > 0 {
				tag = mo.op.Tags[0]
			}
			g, ok := byTag[tag]
			if !ok {
				g = &group{Tag: tag, Anchor: anchor("tag-" + tag)}
				byTag[tag] = g
				order = append(order, tag)
			}
			g.Operations = append(g.Operations, o)
		}
	}
	for _, tag := range order {
		if g := byTag[tag]; len(g.Operations) > 0 {
			p.Groups = append(p.Groups, *g)
		}
	}

	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("apidocs: render: %w", err)
	}
	return buf.Bytes(), nil
}

func toOperation(sw *spec.Swagger, method, path string, shared []spec.Parameter, op *spec.Operation) operation {
	o := operation{
		ID: op.ID, Method: method, Path: path, Summary: op.Summary, Description: op.Description,
		Anchor: anchor("op-" + op.ID),
	}
	secured := sw.Security
	if op.Security != nil {
		secured = op.Security
	}
	o.Secured = len(secured) > 0
	for _, prm := range append(append([]spec.Parameter(nil), shared...), op.Parameters...) {
		prm = resolveParam(sw, prm)
		t := prm.Type
		if prm.In == "body" && prm.Schema != nil {
			t = schemaName(prm.Schema)
		}
		o.Params = append(o.Params, param{Name: prm.Name, In: prm.In, Type: t, Description: prm.Description,
			Required: prm.Required})
	}
	if op.Responses != nil {
		codes := make([]int, 0, len(op.Responses.StatusCodeResponses))
		for code := range op.Responses.StatusCodeResponses {
			codes = append(codes, code)
		}
		sort.Ints(codes)
		for _, code := range codes {
			r := resolveResponse(sw, op.Responses.StatusCodeResponses[code])
			schema := ""
			if r.Schema != nil {
				schema = schemaName(r.Schema)
			}
			o.Responses = append(o.Responses, response{Code: fmt.Sprint(code), Description: r.Description,
				Schema: schema})
		}
	}
	return o
}

func resolveParam(sw *spec.Swagger, p spec.Parameter) spec.Parameter {
	if ref := p.Ref.String(); ref != "" {
		if q, ok := sw.Parameters[strings.TrimPrefix(ref, "#/parameters/")]; ok {
			return q
		}
	}
	return p
}

func resolveResponse(sw *spec.Swagger, r spec.Response) spec.Response {
	if ref := r.Ref.String(); ref != "" {
		if q, ok := sw.Responses[strings.TrimPrefix(ref, "#/responses/")]; ok {
			return q
		}
	}
	return r
}

func schemaName(s *spec.Schema) string {
	if ref := s.Ref.String(); ref != "" {
		return strings.TrimPrefix(ref, "#/definitions/")
	}
	if s.Items != nil && s.Items.Schema != nil {
		return "[]" + schemaName(s.Items.Schema)
	}
	if len(s.Type) > 0 {
		return s.Type[0]
	}
	return "object"
}

func anchor(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// page.html.tmpl is the page: inline styles, no script, nothing from other
// hosts.
//
//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("page").Parse(pageSource))
