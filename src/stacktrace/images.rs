//! `debug_meta.images`: the executable and shared objects loaded in this process, with their
//! ids and load addresses, so a server holding their debug files (uploaded with
//! `sentry-cli debug-files upload`) can symbolicate the instruction addresses of a stripped
//! release build. Read once, with `findshlibs` (as sentry-rust does), then cached.

use std::sync::OnceLock;

use findshlibs::{SharedLibrary, SharedLibraryId, TargetSharedLibrary, TARGET_SUPPORTED};
use sentry_types::protocol::v7::{DebugImage, DebugMeta, Event, SymbolicDebugImage};
use sentry_types::{CodeId, DebugId, Uuid};

/// The loaded images, read on first use.
fn images() -> &'static [DebugImage] {
    static IMAGES: OnceLock<Vec<DebugImage>> = OnceLock::new();
    IMAGES.get_or_init(read_images)
}

/// Adds the loaded images to an event whose frames carry instruction addresses.
pub(crate) fn attach(event: &mut Event<'static>) {
    let has_addresses = event.exception.values.iter().any(|e| {
        e.stacktrace
            .as_ref()
            .is_some_and(|st| st.frames.iter().any(|f| f.instruction_addr.is_some()))
    });
    if !has_addresses {
        return;
    }
    let images = images();
    if images.is_empty() {
        return;
    }
    let mut meta: DebugMeta = event.debug_meta.as_ref().clone();
    meta.images = images.to_vec();
    event.debug_meta = std::borrow::Cow::Owned(meta);
}

fn read_images() -> Vec<DebugImage> {
    let mut images = Vec::new();
    if !TARGET_SUPPORTED {
        return images;
    }
    TargetSharedLibrary::each(|library| {
        let Some(id) = library.debug_id().and_then(|id| debug_id(&id)) else {
            return;
        };
        let mut name = library.name().to_string_lossy().into_owned();
        if name.is_empty() {
            // The executable itself.
            name = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "<main>".to_owned());
        }
        images.push(DebugImage::Symbolic(SymbolicDebugImage {
            name,
            arch: None,
            image_addr: (library.actual_load_addr().0 as u64).into(),
            image_size: library.len() as u64,
            image_vmaddr: (library.stated_load_addr().0 as u64).into(),
            id,
            code_id: library.id().map(|id| CodeId::new(id.to_string())),
            debug_file: library
                .debug_name()
                .map(|n| n.to_string_lossy().into_owned()),
        }));
    });
    images
}

/// The Breakpad-style debug id of an image: for an ELF build id, its first 16 bytes as a GUID
/// whose first three fields are little-endian on the architectures this runs on.
fn debug_id(id: &SharedLibraryId) -> Option<DebugId> {
    match id {
        SharedLibraryId::GnuBuildId(bytes) => Some(debug_id_of_build_id(bytes)),
        SharedLibraryId::Uuid(bytes) => Some(DebugId::from_uuid(Uuid::from_bytes(*bytes))),
        SharedLibraryId::PdbSignature(guid, age) => DebugId::from_guid_age(guid, *age).ok(),
        _ => None,
    }
}

pub(crate) fn debug_id_of_build_id(build_id: &[u8]) -> DebugId {
    let mut guid = [0u8; 16];
    let n = build_id.len().min(16);
    guid[..n].copy_from_slice(&build_id[..n]);
    if cfg!(target_endian = "little") {
        guid[0..4].reverse();
        guid[4..6].reverse();
        guid[6..8].reverse();
    }
    DebugId::from_uuid(Uuid::from_bytes(guid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_id_becomes_a_breakpad_debug_id() {
        let build_id = [
            0xc5, 0xe9, 0x67, 0xc6, 0x86, 0xde, 0x53, 0x92, 0x54, 0x09, 0x10, 0x76, 0xd1, 0x62,
            0xd4, 0xf7, 0x58, 0xf0, 0xa2, 0x7e,
        ];
        assert_eq!(
            debug_id_of_build_id(&build_id).to_string(),
            "c667e9c5-de86-9253-5409-1076d162d4f7"
        );
    }

    #[test]
    fn this_process_has_images_with_ids() {
        let images = read_images();
        assert!(!images.is_empty());
        let DebugImage::Symbolic(main) = &images[0] else {
            panic!("not symbolic");
        };
        assert!(main.image_size > 0);
        assert!(main.code_id.is_some(), "the executable has a build id");
    }
}
