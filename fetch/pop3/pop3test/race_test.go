//go:build race

package pop3test

const raceEnabled = true
