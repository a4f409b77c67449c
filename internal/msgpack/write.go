package msgpack

import (
	"encoding/binary"
	"math"
)

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, 0xc0) }

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendInt appends v as the smallest integer format that holds it: a
// fixint, or int 8 to int 64 (uint 8 to uint 64 for v >= 0).
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
	}
}

// AppendUint appends v as the smallest unsigned format that holds it: a
// positive fixint, or uint 8 to uint 64.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

// AppendFloat appends v as a float 64, whatever its value.
func AppendFloat(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(v))
}

// AppendNumber appends v as notepack.io writes a JavaScript number: an
// integral value as the smallest integer that holds it (-0 as 0), anything
// else (fractions, NaN, infinities, integral values beyond 64 bits) as a
// float 64.
func AppendNumber(b []byte, v float64) []byte {
	if v == math.Trunc(v) && !math.IsInf(v, 0) {
		switch {
		case v >= -(1<<63) && v < 1<<63:
			return AppendInt(b, int64(v))
		case v >= 0 && v < 1<<64:
			return AppendUint(b, uint64(v))
		}
	}
	return AppendFloat(b, v)
}

// AppendStringHeader appends the header of a string of n bytes; the caller
// appends the bytes.
func AppendStringHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
}

// AppendString appends s as a string (fixstr, str 8, 16 or 32).
func AppendString(b []byte, s string) []byte {
	return append(AppendStringHeader(b, len(s)), s...)
}

// AppendStrings appends ss as an array of strings.
func AppendStrings(b []byte, ss []string) []byte {
	b = AppendArrayHeader(b, len(ss))
	for _, s := range ss {
		b = AppendString(b, s)
	}
	return b
}

// AppendBin appends data as binary (bin 8, 16 or 32; an empty or nil
// slice as an empty bin).
func AppendBin(b, data []byte) []byte {
	n := len(data)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, data...)
}

// AppendArrayHeader appends the header of an array of n elements; the
// caller appends the elements.
func AppendArrayHeader(b []byte, n int) []byte { return appendContainerHeader(b, n, 0x90, 0xdc) }

// AppendMapHeader appends the header of a map of n key-value pairs; the
// caller appends each key and then its value.
func AppendMapHeader(b []byte, n int) []byte { return appendContainerHeader(b, n, 0x80, 0xde) }

// appendContainerHeader appends the header of an array or a map: fix is
// the prefix of its fix form, len16 the code of its 16-bit form (the
// 32-bit form's follows it).
func appendContainerHeader(b []byte, n int, fix, len16 byte) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, len16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, len16+1), uint32(n))
	}
}
