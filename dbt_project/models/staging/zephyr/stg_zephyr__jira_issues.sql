-- Jira's answer for each issue the project's Zephyr objects link to (the zephyr_raw/jira_issues asset asks
-- Jira Cloud's issue/bulkfetch when JIRA_* is configured): the key and summary a requirement is named after.

with

source as (

    select * from {{ source('zephyr', 'jira_issues') }}

),

renamed as (

    select
        ----------  ids
        source.project_key,
        source.id as issue_id,
        payload.key as issue_key,

        ----------  text
        payload.fields ->> 'summary' as issue_summary,

        ----------  bookkeeping
        source.extracted_at at time zone 'UTC' as _loaded_at,
        source.run_id as _run_id

    from source
    cross join lateral {{ json_fields('source.payload') }} as payload (
        key text,
        fields jsonb
    )

)

select * from renamed
