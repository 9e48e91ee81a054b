//! What a user's data goes through before any model sees it: readers of every format ([`io`]: images, NIfTI,
//! DICOM, npz, checkpoints), the manifest of samples ([`manifest`]) built by [`ingest`], the seeded split
//! ([`split`]), CSV in and out ([`csv`]), the browser's in-memory files ([`upload`]), per-model preprocessing
//! ([`preprocess`]) and intensity augmentation ([`augment`]).

pub mod augment;
pub mod csv;
pub mod dataset;
pub mod ingest;
pub mod ingest_run;
pub mod io;
pub mod label_export;
pub mod label_volumes;
pub mod manifest;
pub mod preprocess;
pub mod split;
pub mod upload;
