-- One link per (Jira issue, qTest object): a Zephyr test case's issue link goes to its qTest test case,
-- a test execution's to the test run of its (cycle, case) pair (qTest links requirements to runs, not to
-- logs: linkArtifacts' source types are requirements, builds, test-steps, test-logs, releases and the
-- linked types include test-cases and test-runs). Executions of one run linking the same issue make one
-- link; their link types are all named in the requirement's description (qtest_requirements). Cycles'
-- and plans' issue links are not here: they go in the cycle's details block.

with

issue_links as (

    select * from {{ ref('issue_link') }}
    where project_key = '{{ zephyr_project_key() }}'
        and issue_id is not null

),

test_cases as (

    select source_key from {{ ref('qtest_test_cases') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_logs as (

    select * from {{ ref('qtest_test_logs') }}
    where project_key = '{{ zephyr_project_key() }}'

),

test_runs as (

    select * from {{ ref('qtest_test_runs') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- The run of each execution: the log mart's parent, when the run is made (not skipped).
execution_runs as (

    select
        test_logs.execution_id,
        test_logs.parent_source_key as run_source_key
    from test_logs
    inner join test_runs
        on
            test_logs.parent_source_key = test_runs.source_key
            and test_runs.skip_reason is null

),

linked as (

    select
        issue_links.project_key,
        issue_links.issue_id,
        'test-cases' as qtest_object_type,
        test_cases.source_key as object_source_key,
        issue_links._loaded_at
    from issue_links
    inner join test_cases
        on issue_links.object_key = test_cases.source_key
    where issue_links.object_type = 'TestCase'

    union all

    select
        issue_links.project_key,
        issue_links.issue_id,
        'test-runs' as qtest_object_type,
        execution_runs.run_source_key as object_source_key,
        issue_links._loaded_at
    from issue_links
    inner join execution_runs
        on issue_links.object_id = execution_runs.execution_id
    where issue_links.object_type = 'TestExecution'

),

final as (

    select
        project_key::varchar as project_key,
        ('jira-issue:' || issue_id::text || '|' || qtest_object_type || ':' || object_source_key)::varchar
            as source_key,
        ('jira-issue:' || issue_id::text)::varchar as parent_source_key,
        qtest_object_type::varchar as qtest_object_type,
        object_source_key::varchar as object_source_key,
        0 as load_order,
        {{ payload_hash(["'jira-issue:' || issue_id::text", "qtest_object_type", "object_source_key"]) }}::varchar
            as payload_hash,
        max(_loaded_at) as _loaded_at
    from linked
    group by project_key, issue_id, qtest_object_type, object_source_key

)

select * from final
