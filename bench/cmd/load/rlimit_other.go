//go:build !unix

package main

import "math"

func fileLimit() int { return math.MaxInt32 }
