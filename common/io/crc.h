/* crc.h: CRC-32C (Castagnoli), the checksum of tensor streams and of
 * `inspect`.  Uses the SSE4.2 crc32 instruction where the CPU has it and a
 * table otherwise; both give the same values. */
#ifndef CRC_H
#define CRC_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (start with 0) over n bytes at p; returns the new value. */
uint32_t crc_32c(uint32_t crc, const void *p, size_t n);

#endif
