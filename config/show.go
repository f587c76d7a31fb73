package config

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/popfetch/popfetch/internal/humanize"
	"github.com/popfetch/popfetch/internal/termsafe"
)

// AccountView is an account as `popfetch config check` shows it: every value resolved, secrets as their source.
type AccountView struct {
	Name               string `json:"name"`
	Host               string `json:"host"`
	Port               int    `json:"port"`
	TLS                string `json:"tls"`
	CAFile             string `json:"ca_file,omitempty"`
	Fingerprint        string `json:"tls_fingerprint,omitempty"`
	User               string `json:"user"`
	Auth               string `json:"auth"`
	Password           string `json:"password"`
	OAuth2             string `json:"oauth2,omitempty"`
	PasswordTimeout    string `json:"password_timeout"`
	AllowPlaintextAuth bool   `json:"allow_plaintext_auth"`
	Keep               bool   `json:"keep"`
	KeepDays           int    `json:"keep_days"`
	FetchAll           bool   `json:"fetch_all"`
	DeleteImported     bool   `json:"delete_imported"`
	MaxSize            int64  `json:"max_size"`
	Oversize           string `json:"oversize"`
	MaxMessages        int    `json:"max_messages"`
	Timeout            string `json:"timeout"`
	Interval           string `json:"interval"`
	MaxConnections     int    `json:"max_connections"`
	Deliver            string `json:"deliver"`
	ReceivedHeader     bool   `json:"received_header"`
}

// View returns the account as `popfetch config check` shows it.
func (a *Account) View() AccountView {
	pt := a.Password.Timeout
	if pt == 0 {
		pt = DefaultPasswordTimeout
		if a.Password.Kind == SourceKeyring || a.Password.Kind == SourceOAuth2 { // oauth2: the refresh token in the keyring
			pt = DefaultKeyringTimeout
		}
	}
	return AccountView{
		Name: a.Name, Host: a.Host, Port: a.Port, TLS: a.TLS, CAFile: a.CAFile, Fingerprint: a.Fingerprint,
		User: a.User, Auth: a.Auth, Password: a.Password.String(), PasswordTimeout: humanize.Duration(pt),
		AllowPlaintextAuth: a.AllowPlaintextAuth, Keep: a.Keep, KeepDays: a.KeepDays, FetchAll: a.FetchAll,
		MaxSize: a.MaxSize, Oversize: a.Oversize, MaxMessages: a.MaxMessages, Timeout: humanize.Duration(a.Timeout),
		Interval: humanize.Duration(a.Interval), MaxConnections: a.MaxConnections,
		Deliver: a.Deliver.String(), ReceivedHeader: a.TraceHeader,
		OAuth2:         oauth2String(a),
		DeleteImported: a.DeleteImported,
	}
}

func oauth2String(a *Account) string {
	if a.OAuth2 == nil {
		return ""
	}
	return a.OAuth2.String()
}

// WriteJSON writes the configuration as `popfetch config check --json` shows it: every value
// resolved, secrets as their source, strings safe for a terminal.
func (cfg *Config) WriteJSON(w io.Writer) error {
	out := struct {
		Path     string        `json:"path"`
		StateDir string        `json:"state_dir"`
		Accounts []AccountView `json:"accounts"`
	}{Path: cfg.Path, StateDir: cfg.StateDir}
	for _, a := range cfg.Accounts {
		out.Accounts = append(out.Accounts, a.View())
	}
	enc := json.NewEncoder(termsafe.JSONWriter{W: w})
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteResolved writes the configuration as `popfetch config check` shows it: YAML-like, every
// value resolved (defaults included), secrets as their source.
func (cfg *Config) WriteResolved(w io.Writer) error {
	var b strings.Builder
	n := len(cfg.Accounts)
	fmt.Fprintf(&b, "# %s: OK, %d account%s\n", cfg.Path, n, map[bool]string{true: "", false: "s"}[n == 1])
	fmt.Fprintf(&b, "state_dir: %s\naccounts:\n", cfg.StateDir)
	for _, a := range cfg.Accounts {
		v := a.View()
		fmt.Fprintf(&b, "  %s:\n", v.Name)
		line := func(k string, val any) { fmt.Fprintf(&b, "    %-21s %v\n", k+":", val) }
		line("host", v.Host)
		line("port", v.Port)
		line("tls", v.TLS)
		if v.CAFile != "" {
			line("ca_file", v.CAFile)
		}
		if v.Fingerprint != "" {
			line("tls_fingerprint", v.Fingerprint)
		}
		line("user", v.User)
		line("auth", v.Auth)
		line("password", v.Password)
		if v.OAuth2 != "" {
			line("oauth2", v.OAuth2)
		}
		line("password_timeout", v.PasswordTimeout)
		line("allow_plaintext_auth", v.AllowPlaintextAuth)
		line("keep", v.Keep)
		line("keep_days", v.KeepDays)
		line("fetch_all", v.FetchAll)
		line("delete_imported", v.DeleteImported)
		if v.MaxSize > 0 {
			line("max_size", fmt.Sprintf("%d  # bytes", v.MaxSize))
		} else {
			line("max_size", "0  # no limit")
		}
		line("oversize", v.Oversize)
		line("max_messages", v.MaxMessages)
		line("timeout", v.Timeout)
		line("interval", v.Interval)
		line("max_connections", v.MaxConnections)
		line("deliver", v.Deliver)
		line("received_header", v.ReceivedHeader)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
