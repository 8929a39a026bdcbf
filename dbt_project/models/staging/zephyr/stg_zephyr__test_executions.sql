with

source as (

    select * from {{ source('zephyr', 'test_executions') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as test_execution_id,
        source.key as test_execution_key,
        payload.project ->> 'id' as project_id,
        {{ json_link_id('payload."testCycle"') }} as test_cycle_id,
        {{ json_link_id('payload."testExecutionStatus"') }} as status_id,
        {{ json_link_id('payload.environment') }} as environment_id,
        {{ json_link_id('payload."jiraProjectVersion"') }} as jira_project_version_id,
        -- testCase.id is the id of the executed test-case VERSION; the case itself is named only by
        -- the link: .../testcases/<KEY>/versions/<N>.
        {{ json_link_id('payload."testCase"') }} as test_case_version_id,
        {{ execution_case_key("(payload.\"testCase\" ->> 'self')") }} as test_case_key,
        {{ execution_case_version("(payload.\"testCase\" ->> 'self')") }} as test_case_version,
        payload."executedById" as executed_by_id,
        payload."assignedToId" as assigned_to_id,

        ----------  text
        payload.comment as execution_comment,

        ----------  numbers
        {{ json_bigint('payload."executionTime"') }} as execution_time_ms,
        {{ json_bigint('payload."estimatedTime"') }} as estimated_time_ms,

        ----------  booleans
        {{ json_bool('payload.automated') }} as is_automated,

        ----------  collections (unnested in the marts)
        {{ json_object('payload."customFields"') }} as custom_fields,
        {{ json_array("payload.links -> 'issues'") }} as issue_links,

        ----------  timestamps
        {{ iso_timestamp('payload."actualEndDate"') }} as actual_end_date,
        -- Zephyr has no start time: the end minus the execution time (null when either is missing).
        {{ iso_timestamp('payload."actualEndDate"') }}
            - {{ json_bigint('payload."executionTime"') }} * interval '1 millisecond' as actual_start_date,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        project jsonb,
        "testCycle" jsonb,
        "testExecutionStatus" jsonb,
        environment jsonb,
        "jiraProjectVersion" jsonb,
        "testCase" jsonb,
        "executedById" text,
        "assignedToId" text,
        comment text,
        "executionTime" jsonb,
        "estimatedTime" jsonb,
        automated jsonb,
        "customFields" jsonb,
        links jsonb,
        "actualEndDate" text
    )

)

select * from renamed
