-- One qTest requirement per Jira issue that a Zephyr test case or test execution of the project links to,
-- named '<KEY> <summary>' after Jira's answer (issue_link's, asked when JIRA_* is configured);
-- Zephyr's issue link holds only the issue id and its REST URL, so an issue Jira did not answer for (not
-- configured, deleted, not visible to the token) is named 'Jira issue <id>'. Its description (qTest's requirement field 'Description') links the issue and names, in the
-- "Zephyr details" block, every Zephyr object linking to it with the link type (COVERAGE, BLOCKS,
-- RELATED): qTest's links hold no type of ours. The links themselves are qtest_requirement_links.

with

issue_links as (

    select * from {{ ref('issue_link') }}
    where project_key = '{{ zephyr_project_key() }}'
        and issue_id is not null

),

links as (

    select distinct parent_source_key from {{ ref('qtest_requirement_links') }}
    where project_key = '{{ zephyr_project_key() }}'

),

-- The links of cases and executions whose qTest object exists (those qtest_requirement_links holds).
linking as (

    select
        issue_links.project_key,
        issue_links.issue_id,
        issue_links.target_url,
        issue_links.object_type,
        issue_links.object_key,
        issue_links.link_type,
        issue_links.link_order,
        issue_links.issue_key,
        issue_links.issue_summary,
        issue_links._loaded_at
    from issue_links
    inner join links
        on links.parent_source_key = 'jira-issue:' || issue_links.issue_id::text
    where issue_links.object_type in ('TestCase', 'TestExecution')

),

issues as (

    select
        project_key,
        issue_id,
        max(target_url) as target_url,
        max(issue_key) as issue_key,
        max(issue_summary) as issue_summary,
        string_agg(
            '<br>Linked from: '
            || {{ html_escape("object_key || coalesce(' (' || link_type || ')', '')") }},
            ''
            order by object_type, object_key, link_order
        ) as linked_from_lines,
        max(_loaded_at) as _loaded_at
    from linking
    group by project_key, issue_id

),

described as (

    select
        *,
        -- qTest's RequirementResource: name maxLength 500 (the swagger).
        left(
            coalesce(issue_key || coalesce(' ' || issue_summary, ''), 'Jira issue ' || issue_id::text),
            500
        ) as requirement_name,
        coalesce(
            '<p><a href="' || {{ html_escape("target_url") }} || '">' || {{ html_escape("target_url") }}
            || '</a></p>',
            ''
        )
        || '<p><b>{{ details_header() }}</b><br>Jira issue id: ' || issue_id::text
        || coalesce('<br>Jira issue key: ' || {{ html_escape("issue_key") }}, '')
        || linked_from_lines || '</p>' as requirement_description
    from issues

),

final as (

    select
        project_key::varchar as project_key,
        ('jira-issue:' || issue_id::text)::varchar as source_key,
        issue_id::bigint as issue_id,
        issue_key::varchar as issue_key,
        issue_summary::varchar as issue_summary,
        requirement_name::varchar as name,
        target_url::varchar as target_url,
        requirement_description::text as description,
        0 as load_order,
        {{ payload_hash(["requirement_name", "requirement_description"]) }}::varchar as payload_hash,
        _loaded_at
    from described

)

select * from final
