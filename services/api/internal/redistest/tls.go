package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StartTLS runs a redis-server that also serves TLS, with a certificate
// for localhost and 127.0.0.1 signed by a certificate authority made for
// this test alone (CAFile). Clients under test use TLSAddr; the plain port
// of Addr stays for the test's own checks.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	if err := writeTestPKI(dir); err != nil {
		t.Fatalf("making test certificates: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	return startServer(t, &Server{t: t, dir: dir, tlsPort: port})
}

// TLSAddr is the localhost:port of the server's TLS listener.
func (s *Server) TLSAddr() string {
	return net.JoinHostPort("localhost", strconv.Itoa(s.tlsPort))
}

// CAFile is the PEM file of the authority that signed the server's
// certificate; a client that trusts it can verify the server.
func (s *Server) CAFile() string { return filepath.Join(s.dir, "ca.pem") }

func (s *Server) tlsArgs() []string {
	return []string{
		"--tls-port", strconv.Itoa(s.tlsPort),
		"--tls-cert-file", filepath.Join(s.dir, "server.pem"),
		"--tls-key-file", filepath.Join(s.dir, "server-key.pem"),
		"--tls-ca-cert-file", s.CAFile(),
		"--tls-auth-clients", "no",
	}
}

// writeTestPKI writes ca.pem, server.pem and server-key.pem to dir.
func writeTestPKI(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	server := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, server, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		return err
	}
	files := map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: serverDER},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	}
	for name, block := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}
