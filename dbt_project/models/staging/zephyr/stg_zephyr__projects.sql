with

source as (

    select * from {{ source('zephyr', 'projects') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as project_id,
        {{ json_bigint('payload."jiraProjectId"') }} as jira_project_id,

        ----------  booleans
        {{ json_bool('payload.enabled') }} as is_enabled,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        "jiraProjectId" jsonb,
        enabled jsonb
    )

)

select * from renamed
