package scale

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// userHZ is the unit of the CPU times in /proc/self/stat: the kernel's
// USER_HZ, which is 100 on every Linux architecture Go supports.
const userHZ = 100

// ProcessCPU returns the CPU time the process has used so far, user and
// system, in seconds, from /proc/self/stat.
func ProcessCPU() (float64, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, fmt.Errorf("cannot read the process's CPU time: %w", err)
	}
	return parseStat(b)
}

// parseStat reads utime and stime, fields 14 and 15, from a stat line.
// The command name, field 2, is in parentheses and may hold spaces and
// parentheses itself, so the fields are counted from its last ')'.
func parseStat(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/self/stat: no command name")
	}
	// After ") " come fields 3 (state) onwards.
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 13 {
		return 0, errors.New("malformed /proc/self/stat: too few fields")
	}
	var total float64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc/self/stat: %w", err)
		}
		total += float64(n)
	}
	return total / userHZ, nil
}
