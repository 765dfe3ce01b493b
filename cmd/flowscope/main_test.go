package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: flowscope"},
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"exporter", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"exporter", "--hook=kprobe"}, 2, "--hook must be"},
		{[]string{"exporter", "--ring-bytes=1000"}, 2, "--ring-bytes must be a power of two"},
		{[]string{"exporter", "--interim-interval=10ms"}, 2, "--interim-interval must be at least 1s"},
		{[]string{"exporter", "extra"}, 2, "unexpected arguments"},
		{[]string{"help"}, 0, "commands:"},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		if got := run(tc.args, &out); got != tc.code || !strings.Contains(out.String(), tc.want) {
			t.Errorf("flowscope %v: exit %d, output %q; want exit %d with %q", tc.args, got, out.String(), tc.code, tc.want)
		}
	}
}
