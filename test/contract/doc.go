// Package contract holds the spec-driven contract tests of sessioncert. The
// tests live in the package's _test.go files; this file only documents them.
//
// TestContract walks every operation of swagger.yml and every response
// status a client can reach, through the generated client, with the HTTP
// transport wrapped so that each response is checked against the spec: the
// operation is found by method and path template, the status must be
// declared, the body must validate against the declared schema, declared
// headers must be present, and the wire contract's envelopes, error codes and
// date format must hold. It ends with a coverage table of operation × status
// and fails when a declared pair was neither exercised nor allow-listed as
// unreachable by design.
//
// TestBadInputCorpus sends a few hundred malformed requests and checks the
// exact status, error code and cause of each, that the store did not change,
// and that no reply is a 5xx or lacks the error envelope.
//
// By default both run against an in-process server. TestContract runs
// against a deployment instead when these variables are set:
//
//	SESSIONCERT_CONTRACT_URL             base URL, e.g. https://127.0.0.1:1280
//	SESSIONCERT_CONTRACT_CA              PEM bundle that verifies the server
//	SESSIONCERT_CONTRACT_ADMIN_PASSWORD  password of the admin identity
//	SESSIONCERT_CONTRACT_ADMIN_USERNAME  its username, "admin" when unset
//	SESSIONCERT_CONTRACT_SPEC            optional spec file or https URL;
//	                                     default the embedded swagger.yml
//
// SESSIONCERT_CONTRACT_REPORT, when set, names a file that receives the
// coverage table of TestContract.
package contract
