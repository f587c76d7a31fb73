package config

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/popfetch/popfetch/internal/fsutil"
)

// readConfigFile reads the configuration file at path (through a symbolic link, which the user's
// dotfiles may well be) and returns its permission bits. A file that another user could change is
// refused with an *fsutil.UnsafeError (like ssh's StrictModes): anyone who can
// write the file can make popfetch run commands as the user (password_command, deliver: mda). The
// checks are made on the open file, so the bytes read are the bytes checked:
//   - owned by the running user, or by root (a system-wide /etc file);
//   - not writable by group or others;
//   - at most MaxFileSize bytes (errTooLarge).
func readConfigFile(path string) ([]byte, fs.FileMode, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if err := fsutil.CheckFile(f, path, "configuration file", true, 0o022); err != nil {
		return nil, 0, err
	}
	var mode fs.FileMode
	if fi, err := f.Stat(); err == nil {
		mode = fi.Mode().Perm()
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err == nil && len(data) > MaxFileSize {
		return nil, mode, errTooLarge
	}
	return data, mode, err
}

// unsafeMsg is the message of a configuration file another user could change.
func unsafeMsg(err error) (string, bool) {
	var ue *fsutil.UnsafeError
	if !errors.As(err, &ue) {
		return "", false
	}
	return "the file " + ue.Problem + ": whoever can change it can make popfetch run commands as you " +
		"(password_command, deliver: mda), so popfetch refuses it (like ssh): " + ue.Fix, true
}

// readTokenFile reads the OAuth2 token file at path without following a symbolic link, and refuses
// (*fsutil.UnsafeError, exit 78) one that is not the user's or that group or others may access: it
// holds a refresh token, a long-lived credential.
func readTokenFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|fsutil.NoFollow, 0)
	if err != nil {
		return nil, fsutil.Symlink(path, err)
	}
	defer f.Close()
	if err := fsutil.CheckFile(f, path, "OAuth2 token file", false, 0o077); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(f)
	return b.Bytes(), err
}

func isUnsafe(err error) bool {
	var ue *fsutil.UnsafeError
	return errors.As(err, &ue)
}

// unsafeOr returns an *fsutil.UnsafeError as the account's OAuth2 error (exit 78), anything else as
// fail does.
func unsafeOr(a *Account, err error, fail func(error) (func(), error)) error {
	if isUnsafe(err) {
		return a.oauth2Err(err)
	}
	_, err = fail(err)
	return err
}
