-- The bytes kept in canonical.attachment are the file Zephyr served: their length and SHA-256 are the ones
-- recorded at download (a migration that loses or truncates a file fails here).

select
    attachment_id,
    size_bytes,
    octet_length(attachment_blob) as blob_bytes,
    sha256
from {{ ref('attachment') }}
where
    project_key = '{{ zephyr_project_key() }}'
    and (
        attachment_blob is null
        or octet_length(attachment_blob) <> size_bytes
        or encode(sha256(attachment_blob), 'hex') <> sha256
    )
