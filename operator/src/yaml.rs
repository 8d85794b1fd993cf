//! YAML of the manifests the operator generates (the CRD, the RBAC): one line per scalar, as
//! kubectl writes them, so a regenerated file diffs by the fields that changed.

use serde::Serialize;
pub use serde_saphyr::SerializeError;

/// `value` as a YAML document without folded or literal block strings.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, SerializeError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(value, options)
}
