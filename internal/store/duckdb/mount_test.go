package duckdb

import "golang.org/x/sys/unix"

func mountTmpfs(dir, size string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size)
}

func remountBigger(dir string) error {
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT, "size=512m")
}

func unmount(dir string) { _ = unix.Unmount(dir, unix.MNT_DETACH) }
