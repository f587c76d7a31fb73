package main

import (
	"errors"

	"github.com/popfetch/popfetch/config"
	"github.com/popfetch/popfetch/internal/fsutil"
	"github.com/popfetch/popfetch/internal/httpsafe"
)

// isConfigError reports whether err is a configuration error (exit 78): a *config.Error (a file that
// is missing, unreadable or invalid, with FILE:LINE:COL for each problem) or a password source that
// does not work as configured (no keyring entry, password_command failing, password_env unset).
func isConfigError(err error) bool {
	code, ok := secretExitCode(err)
	if ok {
		return code == exitConfig
	}
	var ce *config.Error
	return errors.As(err, &ce)
}

// secretExitCode maps the failure of a password source (*config.SecretError): a keyring or
// password_command that timed out is temporary (75), a missing keyring (no session bus, no Secret
// Service) is an unavailable service (69), anything else is the configuration's fault (78).
func secretExitCode(err error) (int, bool) {
	var se *config.SecretError
	if !errors.As(err, &se) {
		return 0, false
	}
	switch {
	case errors.Is(err, config.ErrKeyringTimeout), errors.Is(err, config.ErrPasswordTimeout):
		return exitTempFail, true
	case errors.Is(err, config.ErrKeyringUnavailable):
		return exitUnavailable, true
	}
	return exitConfig, true
}

// oauth2ExitCode maps the failure to get an OAuth2 access token (*config.OAuth2Error): no refresh
// token stored, a refresh token refused (revoked, expired) or a sign-in declined is an authentication
// failure (77; the message names `popfetch oauth2 login ACCOUNT`), so is an endpoint that answered with a
// redirect popfetch refused to follow (77), an authorization server out of reach
// or a sign-in nobody completed is temporary (75), anything else (invalid_client, a wrong endpoint) is
// the configuration's fault (78).
func oauth2ExitCode(err error) (int, bool) {
	var oe *config.OAuth2Error
	if !errors.As(err, &oe) {
		return 0, false
	}
	_, redirected := httpsafe.AsRedirect(err)
	switch {
	case oe.LoginRequired(), errors.Is(err, config.ErrOAuth2Denied):
		return exitNoPerm, true
	case redirected:
		// An endpoint that redirects gave no token: authentication cannot happen (77), and waiting
		// will not change that (not 75); the profile may name the wrong URL, or someone is
		// redirecting the request on purpose to capture the secrets it carries.
		return exitNoPerm, true
	case errors.Is(err, config.ErrOAuth2Unavailable), errors.Is(err, config.ErrOAuth2Timeout):
		return exitTempFail, true
	}
	return exitConfig, true
}

// initEditErr gives an error of config.AddAccount its exit code: an account that exists without
// --force 64, a file changed meanwhile 75, no safe way to add the account 70, a directory another
// user could change 78, anything else (I/O) 74.
func initEditErr(err error) error {
	var unsafe *fsutil.UnsafeError
	switch {
	case errors.Is(err, config.ErrAccountExists):
		return withCode(exitUsage, err)
	case errors.Is(err, config.ErrChanged):
		return withCode(exitTempFail, err)
	case errors.Is(err, config.ErrCannotAdd):
		return withCode(exitSoftware, err)
	case errors.As(err, &unsafe):
		return withCode(exitConfig, err)
	}
	return withCode(exitIOErr, err)
}
