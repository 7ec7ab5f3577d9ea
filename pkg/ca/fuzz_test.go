package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// FuzzParseCSR feeds ParseCSR arbitrary input. Whatever it accepts must be a
// CSR with a valid signature and an allowed key, and Sign must turn it into
// a leaf that carries nothing from it but the key.
func FuzzParseCSR(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.csr"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed csrs in testdata: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}

	good := makeCSR(f, testKey(f, "P-256", "client"), nil)
	block, _ := pem.Decode(good)
	tampered := bytes.Clone(block.Bytes)
	tampered[len(tampered)-1] ^= 1
	for _, seed := range [][]byte{
		good,
		makeCSR(f, testKey(f, "Ed25519", "client"), nil),
		nil,
		[]byte("   \n"),
		block.Bytes,
		csrPEM(tampered),
		csrPEM(block.Bytes[:len(block.Bytes)/2]),
		append(bytes.Clone(good), "trailing"...),
		append([]byte("leading\n"), good...),
		append(bytes.Clone(good), good...),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}),
		pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: block.Bytes}),
		csrPEM(rawCSR(func(spki *cryptobyte.Builder) {
			spki.AddASN1(cbasn1.SEQUENCE, func(alg *cryptobyte.Builder) {
				alg.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 3, 101, 110}) // X25519
			})
			spki.AddASN1BitString(make([]byte, 32))
		})),
	} {
		f.Add(seed)
	}

	ca, _ := newTestCA(f, nil)
	f.Fuzz(func(t *testing.T, data []byte) { checkParseCSR(t, ca, data) })
}

// FuzzCSRDER mutates the DER inside the PEM block, which FuzzParseCSR
// rarely reaches through base64, so that the x509 parser, the curve probe and
// the key policy see arbitrary structures.
func FuzzCSRDER(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.csr"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed csrs in testdata: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		block, _ := pem.Decode(data)
		f.Add(block.Bytes)
	}

	ca, _ := newTestCA(f, nil)
	f.Fuzz(func(t *testing.T, der []byte) { checkParseCSR(t, ca, csrPEM(der)) })
}

// checkParseCSR asserts what holds for any input to ParseCSR.
func checkParseCSR(t *testing.T, ca *CA, data []byte) {
	t.Helper()
	csr, err := ParseCSR(data)
	if err != nil {
		var ce *CSRError
		if csr != nil || !errors.As(err, &ce) || !errors.Is(err, ErrInvalidCSR) ||
			ce.Reason.String() == "unknown" {
			t.Fatalf("ParseCSR = %v, %v; want nil and a *CSRError with a reason", csr, err)
		}
		return
	}

	if len(data) > MaxCSRSize {
		t.Fatalf("accepted %d bytes, over MaxCSRSize", len(data))
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("accepted a csr whose signature does not verify: %v", err)
	}
	if kerr := checkPublicKey(csr.PublicKey); kerr != nil {
		t.Fatalf("accepted a refused key: %v", kerr)
	}

	issued, err := ca.Sign(testRequest(csr))
	if err != nil {
		t.Fatalf("Sign of an accepted csr: %v", err)
	}
	leaf := issued.Leaf
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != testSPIFFEID ||
		len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Fatalf("leaf sans: uris %v dns %v ip %v email %v", leaf.URIs, leaf.DNSNames,
			leaf.IPAddresses, leaf.EmailAddresses)
	}
	if leaf.Subject.String() != "CN=id-1" || leaf.IsCA ||
		!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("leaf subject %s, ca %v, ext key usage %v", leaf.Subject, leaf.IsCA,
			leaf.ExtKeyUsage)
	}
	if leaf.KeyUsage&^(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment) != 0 {
		t.Fatalf("leaf key usage %b", leaf.KeyUsage)
	}
	allowed := []asn1.ObjectIdentifier{
		oidKeyUsage, oidSubjectAltName, oidBasicConstraints, oidExtKeyUsage, oidAuthorityKeyID,
	}
	for _, e := range leaf.Extensions {
		if !slices.ContainsFunc(allowed, e.Id.Equal) {
			t.Fatalf("leaf has extension %v", e.Id)
		}
	}
}
