package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/store"
)

func TestRetentionFlag(t *testing.T) {
	var f pipelineFlags
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.bind(fs)
	if f.retention.r != store.DefaultRetention {
		t.Fatalf("default %+v", f.retention.r)
	}
	if err := fs.Parse([]string{"--retention=raw=48h,hour=180d"}); err != nil {
		t.Fatal(err)
	}
	want := store.Retention{Raw: 48 * time.Hour, Minute: store.DefaultRetention.Minute, Hour: 180 * 24 * time.Hour}
	if f.retention.r != want {
		t.Errorf("got %+v, want %+v", f.retention.r, want)
	}
	if err := fs.Parse([]string{"--retention=raw"}); err == nil {
		t.Error("a malformed --retention was accepted")
	}
}
