with

source as (

    select * from {{ source('zephyr', 'environments') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as environment_id,
        payload.project ->> 'id' as project_id,

        ----------  text
        payload.name as environment_name,
        payload.description as environment_description,

        ----------  numbers
        {{ json_int('payload.index') }} as environment_index,

        ----------  booleans
        {{ json_bool('payload.archived') }} as is_archived,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        project jsonb,
        name text,
        description text,
        index jsonb,
        archived jsonb
    )

)

select * from renamed
