package ingest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/flowbatch"
)

func spoolBytes(k Key, data []byte) []byte {
	body := appendBody(nil, k, data)
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	out = binary.LittleEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	return append(out, body...)
}

// FuzzSpoolEntry: a damaged spool never panics the reader; a good entry reads back.
func FuzzSpoolEntry(f *testing.F) {
	f.Add(spoolBytes(Key{"e", "b", 7}, []byte("batch")))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 100 {
			e, _, err := readEntry(r)
			if err != nil {
				return
			}
			again := spoolBytes(e.Key, e.Data)
			if _, _, err := readEntry(bufio.NewReader(bytes.NewReader(again))); err != nil {
				t.Fatalf("re-written entry unreadable: %v", err)
			}
		}
	})
}

// FuzzPeekExporterID never panics and agrees with a full decode on valid batches.
func FuzzPeekExporterID(f *testing.F) {
	f.Add(encodeBatch(f, "node-a", "b", 1, 2))
	f.Add([]byte{0x1a, 0x05, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		id := peekExporterID(data)
		if pb, err := flowbatch.Decode(data, flowbatch.DefaultLimits(), time.Now()); err == nil && pb.ExporterId != id {
			t.Fatalf("peek %q, decode %q", id, pb.ExporterId)
		}
	})
}

// FuzzJSONBatch: the HTTPS JSON path never panics.
func FuzzJSONBatch(f *testing.F) {
	f.Add([]byte(`{"majorVersion":1,"exporterId":"e","bootId":"b","sequence":"1"}`))
	f.Add([]byte(`{"records":[{"localAddr":"CgAAAQ=="}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pbBytes, err := jsonToProto(data)
		if err != nil {
			return
		}
		_, _ = flowbatch.Decode(pbBytes, flowbatch.DefaultLimits(), time.Now())
	})
}
