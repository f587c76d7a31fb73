package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/popfetch/popfetch/internal/childenv"
	"github.com/zalando/go-keyring"
	"golang.org/x/term"
)

// KeyringService is the service name of popfetch's entries in the system keyring; the key of an entry
// is the account name. (`secret-tool lookup service popfetch username work` finds one.)
const KeyringService = "popfetch"

// Keyring is the part of a system keyring popfetch uses. SystemKeyring is the real one; tests inject
// their own.
type Keyring interface {
	Get(service, user string) (string, error)
	Set(service, user, secret string) error
	Delete(service, user string) error
}

// SystemKeyring returns the system keyring: the Secret Service over D-Bus on Linux and BSD, the
// Keychain on macOS, the Credential Manager on Windows (github.com/zalando/go-keyring). Its not-found
// error is keyring.ErrNotFound.
func SystemKeyring() Keyring { return systemKeyring{} }

type systemKeyring struct{}

func (systemKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (systemKeyring) Set(service, user, secret string) error {
	return keyring.Set(service, user, secret)
}
func (systemKeyring) Delete(service, user string) error { return keyring.Delete(service, user) }

// Keyring errors, wrapped (errors.Is) by the errors of KeyringGet, KeyringSet, KeyringDelete and
// Account.Secret.
var (
	// ErrKeyringNotFound: the keyring holds no entry for the account.
	ErrKeyringNotFound = errors.New("no password stored in the system keyring")
	// ErrKeyringTimeout: the keyring did not answer in time (locked, an unlock prompt nobody sees).
	ErrKeyringTimeout = errors.New("the system keyring did not answer")
	// ErrKeyringUnavailable: there is no usable keyring (no D-Bus session bus, no Secret Service).
	ErrKeyringUnavailable = errors.New("no system keyring available")
	// ErrPasswordTimeout: password_command did not finish within password_timeout.
	ErrPasswordTimeout = errors.New("timed out")
)

// SecretError is the failure of an account's password source. Its message names the account and the
// source (the command, the variable) and never contains the secret or the command's output.
type SecretError struct {
	Account string
	Source  string // "keyring", "password_command", "password_env", "password", "prompt"
	Err     error
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("account %q: %s: %v", e.Account, e.Source, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// SecretOptions is what resolving a password may use besides the account's profile. A nil
// *SecretOptions is valid: no prompt, stderr to os.Stderr, the system keyring.
type SecretOptions struct {
	// Terminal, when it is a terminal, is where the user is asked for the password (without echo) when
	// the account has no password source and the keyring has none. nil: never ask.
	Terminal *os.File
	// Stderr receives password_command's stderr and the prompt. nil: os.Stderr.
	Stderr io.Writer
	// Keyring replaces the system keyring (tests).
	Keyring Keyring
}

func (o *SecretOptions) stderr() io.Writer {
	if o == nil || o.Stderr == nil {
		return os.Stderr
	}
	return o.Stderr
}

func (o *SecretOptions) keyring() Keyring {
	if o == nil || o.Keyring == nil {
		return SystemKeyring()
	}
	return o.Keyring
}

func (o *SecretOptions) terminal() *os.File {
	if o == nil || o.Terminal == nil || !term.IsTerminal(int(o.Terminal.Fd())) {
		return nil
	}
	return o.Terminal
}

// Secret resolves the account's password (for auth xoauth2 and oauthbearer: the access token) from its
// source, now. For an account with oauth2: it is the OAuth2 access token, cached or refreshed (errors are
// then *OAuth2Error too). Otherwise: password_command is run (no shell for a list, sh -c for a string; the first line of its
// stdout; its stderr passed through; under password_timeout, default 60s), password_env is read, an
// inline password is returned, and without any of these the system keyring is asked (under
// password_timeout, default 10s, since an unlock prompt can block forever). When the keyring has no
// entry or cannot be used and o.Terminal is a terminal, the user is asked. Errors are *SecretError.
//
// Secret does not cache: a caller that needs the password twice keeps it.
func (a *Account) Secret(ctx context.Context, o *SecretOptions) (string, error) {
	if a.OAuth2 != nil {
		return a.oauth2AccessToken(ctx, o) // oauth2_token.go: cached, or refreshed with the stored refresh token
	}
	src := a.Password
	fail := func(source string, err error) (string, error) {
		return "", &SecretError{Account: a.Name, Source: source, Err: err}
	}
	switch src.Kind {
	case SourceInline:
		return src.inline, nil
	case SourceEnv:
		v, ok := os.LookupEnv(src.Env)
		if !ok || v == "" {
			return fail("password_env", fmt.Errorf("$%s is not set or empty", src.Env))
		}
		return strings.TrimRight(v, "\r\n"), nil
	case SourceCommand:
		timeout := src.Timeout
		if timeout == 0 {
			timeout = DefaultPasswordTimeout
		}
		s, err := runPasswordCommand(ctx, a, timeout, o.stderr())
		if err != nil {
			return fail("password_command", err)
		}
		return s, nil
	}

	timeout := src.Timeout
	if timeout == 0 {
		timeout = DefaultKeyringTimeout
	}
	s, err := keyringGet(ctx, o.keyring(), a.Name, timeout)
	if err == nil {
		return s, nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	tty := o.terminal()
	if tty == nil {
		return fail("keyring", keyringHint(err, a.Name, a.configPath))
	}
	if !errors.Is(err, ErrKeyringNotFound) {
		fmt.Fprintf(o.stderr(), "popfetch: account %q: keyring: %v\n", a.Name, err)
	}
	what := "Password"
	if a.Auth == "xoauth2" || a.Auth == "oauthbearer" {
		what = "Access token"
	}
	fmt.Fprintf(o.stderr(), "%s for %s on %s (account %s): ", what, a.User, a.Host, a.Name)
	b, rerr := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(o.stderr())
	if rerr != nil {
		return fail("prompt", rerr)
	}
	if len(b) == 0 {
		return fail("prompt", errors.New("nothing was entered"))
	}
	return string(b), nil
}

// keyringHint adds what the user can do to a keyring error.
func keyringHint(err error, account, path string) error {
	switch {
	case errors.Is(err, ErrKeyringNotFound):
		set := "password set " + account
		if owner, ok := strings.CutSuffix(account, DeliverySuffix); ok {
			set = "password set --deliver " + owner
		}
		return fmt.Errorf("%w (service %q, key %q); store it with `popfetch %s`, or give the profile a password_command or password_env",
			err, KeyringService, account, set)
	case errors.Is(err, ErrKeyringTimeout):
		return fmt.Errorf("%w; is it locked, waiting for an unlock prompt? Unlock it, raise password_timeout, or use password_command (e.g. [\"pass\", \"show\", \"mail/%s\"]) or password_env in %s",
			err, account, path)
	default:
		return fmt.Errorf("%w; without a desktop session (cron, ssh, a server) use password_command (e.g. [\"pass\", \"show\", \"mail/%s\"]) or password_env in %s",
			err, account, path)
	}
}

// KeyringGet reads the account's entry from kr (nil: the system keyring), giving up after timeout
// (0: DefaultKeyringTimeout). Errors wrap ErrKeyringNotFound, ErrKeyringTimeout or
// ErrKeyringUnavailable and say what the user can do.
func KeyringGet(ctx context.Context, kr Keyring, account string, timeout time.Duration) (string, error) {
	s, err := keyringGet(ctx, orSystem(kr), account, timeout)
	if err != nil && ctx.Err() == nil {
		err = &SecretError{Account: account, Source: "keyring", Err: keyringHint(err, account, "the configuration")}
	}
	return s, err
}

// KeyringSet stores secret as the account's entry in kr (nil: the system keyring), under a timeout
// like KeyringGet.
func KeyringSet(ctx context.Context, kr Keyring, account, secret string, timeout time.Duration) error {
	_, err := keyringCall(ctx, timeout, func() (string, error) {
		return "", orSystem(kr).Set(KeyringService, account, secret)
	})
	return wrapKeyring(ctx, account, err)
}

// KeyringDelete removes the account's entry from kr (nil: the system keyring), under a timeout like
// KeyringGet. A missing entry is an error wrapping ErrKeyringNotFound.
func KeyringDelete(ctx context.Context, kr Keyring, account string, timeout time.Duration) error {
	_, err := keyringCall(ctx, timeout, func() (string, error) {
		return "", orSystem(kr).Delete(KeyringService, account)
	})
	return wrapKeyring(ctx, account, err)
}

func wrapKeyring(ctx context.Context, account string, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	if errors.Is(err, ErrKeyringNotFound) {
		return &SecretError{Account: account, Source: "keyring", Err: err}
	}
	return &SecretError{Account: account, Source: "keyring", Err: keyringHint(err, account, "the configuration")}
}

func orSystem(kr Keyring) Keyring {
	if kr == nil {
		return SystemKeyring()
	}
	return kr
}

func keyringGet(ctx context.Context, kr Keyring, account string, timeout time.Duration) (string, error) {
	return keyringCall(ctx, timeout, func() (string, error) { return kr.Get(KeyringService, account) })
}

// keyringCall runs f, giving up after timeout: the Secret Service may never answer (a locked collection
// shows an unlock prompt and waits). f keeps running in its goroutine after a timeout; the keyring
// library offers no way to cancel it.
func keyringCall(ctx context.Context, timeout time.Duration, f func() (string, error)) (string, error) {
	if timeout <= 0 {
		timeout = DefaultKeyringTimeout
	}
	type result struct {
		s   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := f()
		done <- result{s, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		switch {
		case r.err == nil:
			return r.s, nil
		case errors.Is(r.err, keyring.ErrNotFound):
			return "", ErrKeyringNotFound
		default:
			return "", fmt.Errorf("%w: %v", ErrKeyringUnavailable, r.err)
		}
	case <-t.C:
		return "", fmt.Errorf("%w within %v", ErrKeyringTimeout, timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// maxPasswordOutput bounds what popfetch reads from password_command.
const maxPasswordOutput = 64 << 10

// runPasswordCommand runs the account's password_command and returns the first line of its stdout.
// Errors never include the output.
func runPasswordCommand(ctx context.Context, a *Account, timeout time.Duration, stderr io.Writer) (string, error) {
	src := a.Password
	what := "`" + src.CommandString() + "`"
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, src.Command[0], src.Command[1:]...)
	// Without the file's password_env and client_secret_env variables: the command gets no secrets
	// it was not meant to see.
	cmd.Env = childenv.Environ(a.secretEnv, "POPFETCH_ACCOUNT="+a.Name, "POPFETCH_USER="+a.User, "POPFETCH_HOST="+a.Host)
	out := &capped{max: maxPasswordOutput}
	cmd.Stdout = out
	cmd.Stderr = stderr
	// A grandchild (sh -c 'x &') may keep stdout open after the command is killed; stop waiting for it.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return "", fmt.Errorf("%w: %s did not finish within %v (password_timeout); it was killed", ErrPasswordTimeout, what, timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ee.ExitCode() >= 0 {
				return "", fmt.Errorf("%s failed with exit status %d (its messages, if any, are above)", what, ee.ExitCode())
			}
			return "", fmt.Errorf("%s failed: %v", what, ee.ProcessState)
		}
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%s: program %q not found in $PATH", what, src.Command[0])
		}
		if errors.Is(err, exec.ErrWaitDelay) {
			break // it exited 0; a child still holds its stdout
		}
		return "", fmt.Errorf("%s: %v", what, errText(err))
	}
	line, _, _ := bytes.Cut(out.Bytes(), []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return "", fmt.Errorf("%s printed no password: its first line of output is empty", what)
	}
	return string(line), nil
}

// capped is a buffer that keeps at most max bytes and drops the rest (the command still runs to the
// end instead of dying of SIGPIPE).
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		if len(p) > room {
			c.Buffer.Write(p[:room])
		} else {
			c.Buffer.Write(p)
		}
	}
	return len(p), nil
}
