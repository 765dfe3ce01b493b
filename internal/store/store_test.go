package store

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in   string
		want Retention
		err  string
	}{
		{"", DefaultRetention, ""},
		{"raw=48h", Retention{Raw: 48 * time.Hour, Minute: 7 * day, Hour: 90 * day}, ""},
		{"raw=2d, minute=14d,hour=180d", Retention{Raw: 2 * day, Minute: 14 * day, Hour: 180 * day}, ""},
		{"raw=48", DefaultRetention, "not a positive duration"},
		{"raw=-1h", DefaultRetention, "not a positive duration"},
		{"second=1h", DefaultRetention, "unknown level"},
		{"raw", DefaultRetention, "want level=duration"},
		{"minute=12h", DefaultRetention, "at least as long"},
	}
	for _, tc := range tests {
		got, err := ParseRetention(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRetention(%q) error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRetention(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}
