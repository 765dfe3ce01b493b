#include "textflag.h"

// func prefetchAll(ps []uintptr)
// Four lines an iteration, then the rest one by one.
TEXT ·prefetchAll(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ ps_base+0(FP), SI
	MOVQ ps_len+8(FP), CX
	SUBQ $4, CX
	JLT tail
four:
	MOVQ (SI), AX
	MOVQ 8(SI), BX
	MOVQ 16(SI), DX
	MOVQ 24(SI), DI
	PREFETCHT0 (AX)
	PREFETCHT0 (BX)
	PREFETCHT0 (DX)
	PREFETCHT0 (DI)
	ADDQ $32, SI
	SUBQ $4, CX
	JGE four
tail:
	ADDQ $4, CX
	JEQ done
one:
	MOVQ (SI), AX
	PREFETCHT0 (AX)
	ADDQ $8, SI
	DECQ CX
	JNE one
done:
	RET
