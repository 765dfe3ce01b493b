#include "textflag.h"

// Constants of parseUUID36, 16 bytes each: '0', 9, 'a', 5, 'a'-'0'-10 and the low byte of
// each 16-bit word.
DATA uuidK<>+0x00(SB)/8, $0x3030303030303030
DATA uuidK<>+0x08(SB)/8, $0x3030303030303030
DATA uuidK<>+0x10(SB)/8, $0x0909090909090909
DATA uuidK<>+0x18(SB)/8, $0x0909090909090909
DATA uuidK<>+0x20(SB)/8, $0x6161616161616161
DATA uuidK<>+0x28(SB)/8, $0x6161616161616161
DATA uuidK<>+0x30(SB)/8, $0x0505050505050505
DATA uuidK<>+0x38(SB)/8, $0x0505050505050505
DATA uuidK<>+0x40(SB)/8, $0x2727272727272727
DATA uuidK<>+0x48(SB)/8, $0x2727272727272727
DATA uuidK<>+0x50(SB)/8, $0x00ff00ff00ff00ff
DATA uuidK<>+0x58(SB)/8, $0x00ff00ff00ff00ff
GLOBL uuidK<>(SB), RODATA|NOPTR, $0x60

// DIGITS turns the 16 characters in x into their digits' values, and sets a bit of valid
// (a 16-bit mask) for each that is a lowercase hex digit. With t = c - '0' and u = c - 'a':
// a decimal digit has t <= 9 (unsigned), a letter a-f has u <= 5, and the value is t, less 39
// for a letter. X8-X12 hold the constants; X1, X2 and X4 are scratch.
#define DIGITS(x, valid) \
	MOVOU    x, X1; \
	PSUBB    X8, X1; \
	MOVOU    X1, X2; \
	PMINUB   X9, X2; \
	PCMPEQB  X1, X2; \
	PSUBB    X10, x; \
	MOVOU    x, X4; \
	PMINUB   X11, X4; \
	PCMPEQB  x, X4; \
	POR      X4, X2; \
	PMOVMSKB X2, valid; \
	PAND     X12, X4; \
	PSUBB    X4, X1; \
	MOVOU    X1, x

// PAIRS packs x's digit values in pairs: each 16-bit word, two values a (its low byte) and b,
// becomes a<<4 | b. X13 holds the mask of the words' low bytes; X1 is scratch.
#define PAIRS(x) \
	MOVOU x, X1; \
	PSLLW $4, X1; \
	PSRLW $8, x; \
	POR   X1, x; \
	PAND  X13, x

// func parseUUID36(p *byte) (lo, hi uint64, ok bool)
//
// p points at 36 bytes. Only SSE2 is used (every amd64 has it). The 32 digits are gathered
// into two registers, 16 each, checked and turned into their values together, and each pair
// of values is packed into a byte; the key's halves are the bytes read big endian.
TEXT ·parseUUID36(SB), NOSPLIT, $0-25
	MOVQ p+0(FP), SI
	CMPB 8(SI), $'-'
	JNE  bad
	CMPB 13(SI), $'-'
	JNE  bad
	CMPB 18(SI), $'-'
	JNE  bad
	CMPB 23(SI), $'-'
	JNE  bad

	// X0: digits 0-7, 9-12, 14-17; X3: 19-22, 24-27, 28-35.
	MOVQ       0(SI), X0
	MOVL       9(SI), X1
	MOVL       14(SI), X2
	PUNPCKLLQ  X2, X1
	PUNPCKLQDQ X1, X0
	MOVL       19(SI), X3
	MOVL       24(SI), X4
	PUNPCKLLQ  X4, X3
	MOVQ       28(SI), X5
	PUNPCKLQDQ X5, X3

	MOVOU uuidK<>+0x00(SB), X8
	MOVOU uuidK<>+0x10(SB), X9
	MOVOU uuidK<>+0x20(SB), X10
	MOVOU uuidK<>+0x30(SB), X11
	MOVOU uuidK<>+0x40(SB), X12
	MOVOU uuidK<>+0x50(SB), X13

	DIGITS(X0, AX)
	DIGITS(X3, BX)
	ANDL BX, AX
	CMPL AX, $0xffff
	JNE  bad

	PAIRS(X0)
	PAIRS(X3)
	PACKUSWB X3, X0 // the UUID's 16 bytes, in order

	MOVQ       X0, AX
	PUNPCKHQDQ X0, X0
	MOVQ       X0, BX
	BSWAPQ     AX
	BSWAPQ     BX
	MOVQ       AX, lo+8(FP)
	MOVQ       BX, hi+16(FP)
	MOVB       $1, ok+24(FP)
	RET

bad:
	MOVQ $0, lo+8(FP)
	MOVQ $0, hi+16(FP)
	MOVB $0, ok+24(FP)
	RET
