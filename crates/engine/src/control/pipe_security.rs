//! The Windows named pipe's security: full access for the agent's owner
//! and SYSTEM, and for nobody else (a protected DACL, so nothing is
//! inherited); other users cannot even open it.
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::io;
use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{LocalFree, HLOCAL};
use windows_sys::Win32::Security::Authorization::{
    ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES};

/// Owner rights (the user whose agent made the pipe) and Local System:
/// generic all; no other entry.
const SDDL: &str = "D:P(A;;GA;;;OW)(A;;GA;;;SY)";

/// A self-relative security descriptor made once and used for every
/// instance of the pipe.
pub(super) struct Descriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is a block of memory that is only read after it is
// made, and freed once, on drop.
unsafe impl Send for Descriptor {}
unsafe impl Sync for Descriptor {}

impl Descriptor {
    pub(super) fn owner_only() -> io::Result<Descriptor> {
        let sddl: Vec<u16> = SDDL.encode_utf16().chain(std::iter::once(0)).collect();
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is a NUL-terminated UTF-16 string that outlives the
        // call; `sd` receives a descriptor the system allocated (freed with
        // LocalFree on drop); the size output is optional.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 || sd.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Descriptor(sd))
    }

    /// Creates an instance of the pipe `name` with this descriptor.
    pub(super) fn create(
        &self,
        options: &ServerOptions,
        name: &OsStr,
    ) -> io::Result<NamedPipeServer> {
        let mut attrs = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        };
        // SAFETY: `attrs` is a valid SECURITY_ATTRIBUTES for the duration of
        // the call, and its descriptor lives as long as `self`.
        unsafe {
            options.create_with_security_attributes_raw(
                name,
                (&mut attrs as *mut SECURITY_ATTRIBUTES).cast(),
            )
        }
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: the descriptor came from the system's allocator in
        // `owner_only` and is freed once.
        unsafe {
            LocalFree(self.0 as HLOCAL);
        }
    }
}
