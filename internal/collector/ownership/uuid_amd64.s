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

	// X0 becomes the first 16 digits' values; AX has a bit set per valid digit.
	MOVOU   X0, X1
	PSUBB   X8, X1  // t = c - '0'
	MOVOU   X1, X2
	PMINUB  X9, X2
	PCMPEQB X1, X2  // t <= 9 (unsigned): a decimal digit
	PSUBB   X10, X0 // u = c - 'a'
	MOVOU   X0, X4
	PMINUB  X11, X4
	PCMPEQB X0, X4  // u <= 5: a letter a-f
	POR     X4, X2
	PMOVMSKB X2, AX
	PAND    X12, X4
	PSUBB   X4, X1  // t, less 39 for a letter: the digit's value
	MOVOU   X1, X0

	// Likewise X3 and BX.
	MOVOU   X3, X1
	PSUBB   X8, X1
	MOVOU   X1, X2
	PMINUB  X9, X2
	PCMPEQB X1, X2
	PSUBB   X10, X3
	MOVOU   X3, X4
	PMINUB  X11, X4
	PCMPEQB X3, X4
	POR     X4, X2
	PMOVMSKB X2, BX
	PAND    X12, X4
	PSUBB   X4, X1
	MOVOU   X1, X3

	ANDL BX, AX
	CMPL AX, $0xffff
	JNE  bad

	// Each 16-bit word holds two values, a (low byte) and b: a<<4 | b, in its low byte.
	MOVOU    X0, X1
	PSLLW    $4, X1
	PSRLW    $8, X0
	POR      X1, X0
	PAND     X13, X0
	MOVOU    X3, X1
	PSLLW    $4, X1
	PSRLW    $8, X3
	POR      X1, X3
	PAND     X13, X3
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
