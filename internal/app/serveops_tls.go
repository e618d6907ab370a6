package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/opensts/sts/internal/config"
)

// certCheckEvery bounds how often the certificate files are stat'ed: at
// most once a second, on a handshake.
const certCheckEvery = time.Second

// certReloader serves the certificate in tls.cert_file/tls.key_file and
// loads them again when either file changes (size or modification time),
// so a renewed certificate (cert-manager, certbot) is served without a
// restart. A new pair that does not load (half written, key and
// certificate not matching) is logged and the previous one kept
// (docs/security.md F-33).
type certReloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // size and mtime of both files when cert was loaded (or last failed)
	checked time.Time
}

// newCertReloader loads the pair once; a pair that does not load stops
// start-up.
func newCertReloader(cfg config.TLSConfig, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: cfg.CertFile, keyFile: cfg.KeyFile, logger: logger, now: time.Now}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	cert, err := loadPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	r.cert, r.stamp, r.checked = cert, stamp, r.now()
	return r, nil
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certificate %s and key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// fileStamp identifies the current contents of both files cheaply.
func (r *certReloader) fileStamp() (string, error) {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// GetCertificate implements tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		r.reloadLocked()
	}
	return r.cert, nil
}

func (r *certReloader) reloadLocked() {
	stamp, err := r.fileStamp()
	if err != nil {
		if r.stamp != "missing" {
			r.logger.Error("tls: certificate files unreadable; serving the previous certificate", "error", err.Error())
			r.stamp = "missing"
		}
		return
	}
	if stamp == r.stamp {
		return
	}
	r.stamp = stamp // a bad pair is reported once, not on every handshake
	cert, err := loadPair(r.certFile, r.keyFile)
	if err != nil {
		r.logger.Error("tls: new certificate does not load; serving the previous one", "error", err.Error(),
			"serving_not_after", r.cert.Leaf.NotAfter)
		return
	}
	r.cert = cert
	r.logger.Info("tls: certificate reloaded", "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
}

// tlsConfig is the public listener's TLS configuration, or nil without
// tls.cert_file.
func tlsConfig(cfg config.Config, logger *slog.Logger) (*tls.Config, error) {
	if !cfg.TLS.Enabled() {
		return nil, nil
	}
	r, err := newCertReloader(cfg.TLS, logger)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}, nil
}
