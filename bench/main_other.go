//go:build !linux

// The bench measures processes with Linux facilities (process groups with a parent-death signal,
// rusage of children, /proc); elsewhere it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: runs on Linux only")
	os.Exit(1)
}
