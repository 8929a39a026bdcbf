with

source as (

    select * from {{ source('zephyr', 'test_cases') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as test_case_id,
        source.key as test_case_key,
        payload.project ->> 'id' as project_id,
        {{ json_link_id('payload.folder') }} as folder_id,
        {{ json_link_id('payload.priority') }} as priority_id,
        {{ json_link_id('payload.status') }} as status_id,
        {{ json_link_id('payload.component') }} as component_id,
        payload.owner ->> 'accountId' as owner_account_id,

        ----------  text
        payload.name as test_case_name,
        payload.objective,
        payload.precondition,
        -- Which script the case has, from its testScript link: steps, or a plain / BDD script.
        case
            when rtrim(payload."testScript" ->> 'self', '/') like '%/teststeps' then 'step_by_step'
            when rtrim(payload."testScript" ->> 'self', '/') like '%/testscript' then 'script'
        end as test_script_link_kind,

        ----------  numbers
        {{ json_bigint('payload."estimatedTime"') }} as estimated_time_ms,

        ----------  collections (unnested in the marts)
        {{ json_array('payload.labels') }} as labels,
        {{ json_object('payload."customFields"') }} as custom_fields,
        {{ json_array("payload.links -> 'issues'") }} as issue_links,
        {{ json_array("payload.links -> 'webLinks'") }} as web_links,

        ----------  timestamps
        {{ iso_timestamp('payload."createdOn"') }} as created_on,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        project jsonb,
        folder jsonb,
        priority jsonb,
        status jsonb,
        component jsonb,
        owner jsonb,
        name text,
        objective text,
        precondition text,
        "testScript" jsonb,
        "estimatedTime" jsonb,
        labels jsonb,
        "customFields" jsonb,
        links jsonb,
        "createdOn" text
    )

)

select * from renamed
