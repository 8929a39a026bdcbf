with

source as (

    select * from {{ source('zephyr', 'test_plans') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as test_plan_id,
        source.key as test_plan_key,
        payload.project ->> 'id' as project_id,
        {{ json_link_id('payload.folder') }} as folder_id,
        {{ json_link_id('payload.status') }} as status_id,
        payload.owner ->> 'accountId' as owner_account_id,

        ----------  text
        payload.name as test_plan_name,
        payload.objective,

        ----------  collections (unnested in the marts)
        {{ json_array('payload.labels') }} as labels,
        {{ json_object('payload."customFields"') }} as custom_fields,
        {{ json_array("payload.links -> 'issues'") }} as issue_links,
        {{ json_array("payload.links -> 'webLinks'") }} as web_links,
        {{ json_array("payload.links -> 'testCycles'") }} as test_cycle_links,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        project jsonb,
        folder jsonb,
        status jsonb,
        owner jsonb,
        name text,
        objective text,
        labels jsonb,
        "customFields" jsonb,
        links jsonb
    )

)

select * from renamed
