/* A stand-in for Windows' bcryptprimitives.dll, for running Windows builds
 * under wine 8, which lacks it: Rust's standard library draws its random
 * numbers from ProcessPrng there. This one fills the buffer from
 * RtlGenRandom (SystemFunction036 in advapi32), which wine has. Built by the
 * wine test with mingw; never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
