with

source as (

    select * from {{ source('zephyr', 'test_cycles') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as test_cycle_id,
        source.key as test_cycle_key,
        payload.project ->> 'id' as project_id,
        {{ json_link_id('payload.folder') }} as folder_id,
        {{ json_link_id('payload.status') }} as status_id,
        {{ json_link_id('payload."jiraProjectVersion"') }} as jira_project_version_id,
        payload.owner ->> 'accountId' as owner_account_id,

        ----------  text
        payload.name as test_cycle_name,
        payload.description as test_cycle_description,

        ----------  collections (unnested in the marts)
        {{ json_object('payload."customFields"') }} as custom_fields,
        {{ json_array("payload.links -> 'issues'") }} as issue_links,
        {{ json_array("payload.links -> 'webLinks'") }} as web_links,
        {{ json_array("payload.links -> 'testPlans'") }} as test_plan_links,

        ----------  timestamps
        {{ iso_timestamp('payload."plannedStartDate"') }} as planned_start_date,
        {{ iso_timestamp('payload."plannedEndDate"') }} as planned_end_date,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        project jsonb,
        folder jsonb,
        status jsonb,
        "jiraProjectVersion" jsonb,
        owner jsonb,
        name text,
        description text,
        "customFields" jsonb,
        links jsonb,
        "plannedStartDate" text,
        "plannedEndDate" text
    )

)

select * from renamed
