with

source as (

    select * from {{ source('zephyr', 'folders') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as folder_id,
        {{ json_bigint('payload."parentId"') }} as parent_folder_id,
        payload.project ->> 'id' as project_id,

        ----------  text
        payload.name as folder_name,
        payload."folderType" as folder_type,

        ----------  numbers
        {{ json_int('payload.index') }} as folder_index,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        "parentId" jsonb,
        project jsonb,
        name text,
        "folderType" text,
        index jsonb
    )

)

select * from renamed
