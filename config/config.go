// Package config reads popfetch's account profiles from a YAML file and turns them into validated,
// defaulted Account values; it also resolves each account's password source (system keyring,
// password_command, password_env, inline, interactive prompt) when a session needs it, and for accounts
// with oauth2: it logs in (OAuth2Login) and keeps the OAuth2 access token fresh (RFC 6749, 7636, 8252,
// 8628; see oauth2.go, oauth2_token.go and oauth2_login.go).
//
// Loading is strict: an unknown or misspelt key, a value of the wrong type or out of range, a missing
// required key, two password sources or two destinations are all errors, and every error of a file is
// reported at once, each with FILE:LINE:COL and the account it belongs to (see Error).
//
// The file format is documented, key by key, in the README's "Configuration" section;
// testdata/example.yaml is the same example and the tests keep the two equal.
//
// config imports neither fetch nor store: cmd/popfetch wires them together.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popfetch/popfetch/internal/shquote"
)

// Defaults that apply when neither the account nor defaults: set a key.
const (
	DefaultTimeout         = 60 * time.Second // timeout: per network operation
	DefaultKeyringTimeout  = 10 * time.Second // how long the system keyring may take to answer
	DefaultPasswordTimeout = 60 * time.Second // how long password_command may run (it may ask for a GPG passphrase)
	DefaultPortImplicitTLS = 995              // RFC 8314 §3.3 (implicit TLS), RFC 2595 §4 (pop3s)
	DefaultPortPlain       = 110              // RFC 1939 §3, also for STLS (RFC 2595)
	DefaultInterval        = 5 * time.Minute  // interval: how often `popfetch daemon` polls an account
	MinInterval            = time.Second      // the shortest interval accepted
	DefaultMaxConnections  = 8                // max_connections: sessions at once with one server host
)

// TLS modes (Account.TLS).
const (
	TLSImplicit = "implicit" // TLS from the first byte (port 995)
	TLSStartTLS = "starttls" // STLS command, RFC 2595; refused when the server does not offer it
	TLSNone     = "none"     // plaintext; a password is only sent with allow_plaintext_auth: true
)

// AuthMethods lists the valid values of auth:, in the order the README documents them. "auto" lets the
// client choose the best mechanism the server offers; "user" is USER/PASS (RFC 1939 §7), "apop" is
// RFC 1939 §7 APOP, the others are SASL mechanisms (RFC 5034).
var AuthMethods = []string{"auto", "user", "apop", "plain", "login", "scram-sha-256", "scram-sha-1",
	"cram-md5", "xoauth2", "oauthbearer"}

// Destination kinds (Destination.Kind).
const (
	DeliverMaildir = "maildir"
	DeliverMbox    = "mbox"
	DeliverMDA     = "mda"
	DeliverLMTP    = "lmtp"
	DeliverSMTP    = "smtp"
	DeliverGmail   = "gmail" // the Gmail API (deliver_gmail.go)
)

// Oversize policies (Account.Oversize).
const (
	OversizeSkip   = "skip"   // leave the message on the server, do not retrieve it
	OversizeDelete = "delete" // delete it on the server without retrieving it
)

// Config is a loaded, validated configuration file.
type Config struct {
	Path     string     // the file it was read from
	StateDir string     // absolute; state_dir or $XDG_STATE_HOME/popfetch
	Accounts []*Account // sorted by Name; never empty
}

// Account returns the account with the given name, or nil.
func (c *Config) Account(name string) *Account {
	for _, a := range c.Accounts {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Names returns the account names, sorted.
func (c *Config) Names() []string {
	names := make([]string, len(c.Accounts))
	for i, a := range c.Accounts {
		names[i] = a.Name
	}
	return names
}

// Account is one POP3 account, with every default applied and every value validated.
type Account struct {
	Name string // [A-Za-z0-9._-]+, the key under accounts:; also the keyring key

	Host        string
	Port        int    // 1..65535; 995 for implicit TLS, 110 otherwise
	TLS         string // TLSImplicit, TLSStartTLS or TLSNone
	CAFile      string // absolute path of extra trust anchors (PEM), or ""
	Fingerprint string // "sha256:" + 64 lowercase hex digits (SHA-256 of the leaf certificate, DER), or ""

	User               string
	Auth               string // one of AuthMethods
	AllowPlaintextAuth bool   // may send a password or token over tls: none
	Password           PasswordSource
	// OAuth2, when not nil, makes Secret yield an OAuth2 access token (see OAuth2Login); Auth is then
	// xoauth2 or oauthbearer and Password.Kind is SourceOAuth2.
	OAuth2 *OAuth2

	Keep        bool  // leave messages on the server, track them by UIDL
	KeepDays    int   // with Keep: delete a message this many days after it was first fetched; 0 = never
	FetchAll    bool  // also retrieve messages already fetched before
	MaxSize     int64 // bytes; 0 = no limit
	Oversize    string
	MaxMessages int           // per run; 0 = no limit
	Timeout     time.Duration // per network operation
	Interval    time.Duration // `popfetch daemon`: time between polls (before jitter and backoff)

	// MaxConnections (key max_connections, default 8): at most this many sessions at once with the
	// account's host, as providers cap concurrent logins. Accounts on one host share the smallest
	// value among them.
	MaxConnections int

	// DeleteImported (key delete_imported): messages whose UIDL was imported from another fetcher's
	// list (`popfetch state import`) may be deleted like those popfetch delivered; by default they
	// are left on the server.
	DeleteImported bool

	Deliver     Destination
	TraceHeader bool // add a Received: header (key received_header)

	configPath string   // for hints in errors
	stateDir   string   // the configuration's StateDir: where OAuth2 tokens may be kept
	secretEnv  []string // SecretEnv: the file's password_env and client_secret_env names
}

// Password source kinds (PasswordSource.Kind).
const (
	SourceKeyring = "keyring" // the system keyring (Secret Service), service "popfetch", key = account name
	SourceCommand = "command" // password_command
	SourceEnv     = "env"     // password_env
	SourceInline  = "inline"  // password
	SourceOAuth2  = "oauth2"  // oauth2: an access token from the refresh token of `popfetch oauth2 login`
)

// PasswordSource says where an account's password (or, for xoauth2/oauthbearer, its access token)
// comes from. It never holds a secret other than an inline one, and String never shows that.
type PasswordSource struct {
	Kind    string        // SourceKeyring, SourceCommand, SourceEnv or SourceInline
	Command []string      // SourceCommand: argv, or {"sh", "-c", line} when Shell
	Shell   bool          // SourceCommand: the command was a string, run by sh -c
	Env     string        // SourceEnv: the variable name
	Timeout time.Duration // password_timeout; 0 = DefaultKeyringTimeout / DefaultPasswordTimeout
	inline  string
}

// String describes the source without revealing any secret: "(keyring)", "(command: pass show x)",
// "(env WORK_PASSWORD)", "(inline)".
func (p PasswordSource) String() string {
	switch p.Kind {
	case SourceCommand:
		return "(command: " + p.CommandString() + ")"
	case SourceEnv:
		return "(env " + p.Env + ")"
	case SourceInline:
		return "(inline)"
	case SourceOAuth2:
		return "(oauth2)"
	default:
		return "(keyring)"
	}
}

// GoString keeps %#v from printing an inline password.
func (p PasswordSource) GoString() string { return "config.PasswordSource" + p.String() }

// CommandString is the command as the user wrote it.
func (p PasswordSource) CommandString() string {
	if p.Shell && len(p.Command) == 3 {
		return p.Command[2]
	}
	return shquote.Join(p.Command)
}

// Destination is where an account's messages are delivered: exactly one kind.
type Destination struct {
	Kind      string            // DeliverMaildir, DeliverMbox, DeliverMDA, DeliverLMTP, DeliverSMTP, DeliverIMAP or DeliverGmail
	Path      string            // maildir, mbox: absolute path
	Command   []string          // mda: argv, or {"sh", "-c", line} when Shell
	Shell     bool              // mda: given as a string, run by sh -c
	Address   string            // lmtp: "unix:/abs/path" or "host:port"; smtp: "host:port"
	Recipient string            // lmtp, smtp: the envelope recipient
	SMTPTLS   string            // smtp: SMTPTLSVerify or SMTPTLSOpportunistic (smtp_tls.go)
	SMTPCA    string            // smtp: ca_file, extra trust anchors (PEM) for SMTPTLSVerify, or ""
	IMAP      *IMAPDestination  // imap: the mailbox and the server (see Account.DeliveryAccount)
	Gmail     *GmailDestination // gmail
}

// Network returns the network and address to dial for lmtp and smtp: ("unix", "/run/x") or
// ("tcp", "host:port").
func (d Destination) Network() (network, address string) {
	if p, ok := strings.CutPrefix(d.Address, "unix:"); ok {
		return "unix", p
	}
	return "tcp", d.Address
}

// String describes the destination on one line, e.g. "maildir /home/alice/Maildir".
func (d Destination) String() string {
	switch d.Kind {
	case DeliverMaildir, DeliverMbox:
		return d.Kind + " " + d.Path
	case DeliverMDA:
		if d.Shell && len(d.Command) == 3 {
			return "mda (sh -c) " + d.Command[2]
		}
		return "mda " + shquote.Join(d.Command)
	case DeliverLMTP:
		return d.Kind + " " + d.Address + " recipient " + d.Recipient
	case DeliverSMTP:
		return d.Kind + " " + d.Address + " recipient " + d.Recipient + " (STARTTLS: " + d.SMTPTLS + ")"
	case DeliverGmail:
		if d.Gmail != nil {
			s := "gmail " + d.Gmail.User + " at " + d.Gmail.APIURL
			if len(d.Gmail.Labels) > 0 {
				s += " labels " + strings.Join(d.Gmail.Labels, ", ")
			}
			if d.Gmail.OAuth2 != nil {
				s += "; oauth2 " + d.Gmail.OAuth2.String()
			}
			return s
		}
	case DeliverIMAP:
		if d.IMAP != nil {
			return d.IMAP.String()
		}
	}
	return "(none)"
}

// DefaultPath is the configuration file used without --config or POPFETCH_CONFIG:
// $XDG_CONFIG_HOME/popfetch/config.yaml, or ~/.config/popfetch/config.yaml.
func DefaultPath() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "popfetch", "config.yaml"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the configuration file: %w; use --config FILE", err)
	}
	return filepath.Join(home, ".config", "popfetch", "config.yaml"), nil
}

// DefaultStateDir is the state directory used without state_dir: $XDG_STATE_HOME/popfetch, or
// ~/.local/state/popfetch.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "popfetch"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", errors.New("cannot find the state directory ($HOME is not set); set state_dir")
	}
	return filepath.Join(home, ".local", "state", "popfetch"), nil
}
