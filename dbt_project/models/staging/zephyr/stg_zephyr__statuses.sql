with

source as (

    select * from {{ source('zephyr', 'statuses') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as status_id,
        payload.project ->> 'id' as project_id,

        ----------  text
        payload.name as status_name,
        payload.description as status_description,
        payload.color,
        -- A status never carries its type (only the statusType query filter does): the extraction lists
        -- each type on its own and keeps the filter beside the payload (REAL_SHAPES.md, Zephyr Scale Cloud 1).
        source.listing_filter ->> 'statusType' as status_type,
        -- The API root the project's objects were read from (".../v2"), for attachment URLs.
        substring(payload.project ->> 'self' from '^(.*)/projects/[^/]*$') as api_base_url,

        ----------  numbers
        {{ json_int('payload.index') }} as status_index,

        ----------  booleans
        {{ json_bool('payload.archived') }} as is_archived,
        {{ json_bool('payload."default"') }} as is_default,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        project jsonb,
        name text,
        description text,
        color text,
        index jsonb,
        archived jsonb,
        "default" jsonb
    )

)

select * from renamed
