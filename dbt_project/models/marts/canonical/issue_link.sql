with

test_cases as (

    select * from {{ ref('stg_zephyr__test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_cycles as (

    select * from {{ ref('stg_zephyr__test_cycles') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_plans as (

    select * from {{ ref('stg_zephyr__test_plans') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- Jira's answers for the linked issues (zephyr_raw/jira_issues, when JIRA_* is configured): key, summary.
jira_issues as (

    select * from {{ ref('stg_zephyr__jira_issues') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_executions as (

    select * from {{ ref('stg_zephyr__test_executions') }}
    where project_key = '{{ zephyr_project_key() }}'

),

linked as (

    select
        project_key,
        'TestCase' as object_type,
        test_case_id as object_id,
        test_case_key as object_key,
        issue_links,
        _loaded_at
    from test_cases

    union all

    select
        project_key,
        'TestCycle' as object_type,
        test_cycle_id as object_id,
        test_cycle_key as object_key,
        issue_links,
        _loaded_at
    from test_cycles

    union all

    select
        project_key,
        'TestPlan' as object_type,
        test_plan_id as object_id,
        test_plan_key as object_key,
        issue_links,
        _loaded_at
    from test_plans

    union all

    select
        project_key,
        'TestExecution' as object_type,
        test_execution_id as object_id,
        coalesce(test_execution_key, test_execution_id::text) as object_key,
        issue_links,
        _loaded_at
    from test_executions
    where issue_links <> '[]'::jsonb

),

unnested as (

    select
        linked.project_key,
        linked.object_type,
        linked.object_id,
        linked.object_key,
        link.ordinality as link_order,
        {{ json_bigint("link.value -> 'id'") }} as zephyr_link_id,
        {{ json_bigint("link.value -> 'issueId'") }} as issue_id,
        link.value ->> 'target' as target_url,
        link.value ->> 'type' as link_type,
        linked._loaded_at
    from linked
    cross join lateral jsonb_array_elements(linked.issue_links) with ordinality as link
    where linked.object_id is not null

),

-- The key and summary trimmed of the spaces and line ends lib/jira_issues.py trims (SPACE).
answered as (

    select
        unnested.*,
        nullif(btrim(jira_issues.issue_key, e' \t\r\n'), '') as issue_key,
        nullif(btrim(jira_issues.issue_summary, e' \t\r\n'), '') as issue_summary
    from unnested
    left join jira_issues
        on jira_issues.issue_id = unnested.issue_id

),

final as (

    select
        {{ id_or_surrogate('zephyr_link_id', "'issue-link:' || object_type || ':' || object_id::text || ':' || link_order::text") }}
            as link_id,
        object_type::varchar as object_type,
        object_id,
        object_key::varchar as object_key,
        issue_id,
        issue_key::varchar as issue_key,
        issue_summary::varchar as issue_summary,
        target_url::varchar as target_url,
        (case
            when link_type in ('COVERAGE', 'BLOCKS', 'RELATED') then link_type
        end)::varchar as link_type,
        link_order::integer as link_order,
        project_key::varchar as project_key,
        _loaded_at
    from answered

)

select * from final
