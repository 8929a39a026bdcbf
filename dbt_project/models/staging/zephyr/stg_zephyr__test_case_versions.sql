-- The older versions of the test cases: a version is a whole test case as it was (GET
-- /testcases/{key}/versions/{n}), so its columns are the case's (stg_zephyr__test_cases), read the same way.

with

source as (

    select * from {{ source('zephyr', 'test_case_versions') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as test_case_version_id,
        source.parent_key as test_case_key,
        source.position as version_number,
        {{ json_link_id('payload.priority') }} as priority_id,
        {{ json_link_id('payload.status') }} as status_id,
        {{ json_link_id('payload.component') }} as component_id,
        payload.owner ->> 'accountId' as owner_account_id,

        ----------  text
        payload.name,
        payload.objective,
        payload.precondition,

        ----------  numbers
        {{ json_bigint('payload."estimatedTime"') }} as estimated_time_ms,

        ----------  collections (unnested in the mart)
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
        priority jsonb,
        status jsonb,
        component jsonb,
        owner jsonb,
        name text,
        objective text,
        precondition text,
        "estimatedTime" jsonb,
        labels jsonb,
        "customFields" jsonb,
        links jsonb,
        "createdOn" text
    )

)

select * from renamed
