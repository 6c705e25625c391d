/**
 * Every span attribute name stepguard writes, in one place. Semantic-convention names are copied here
 * (not imported from `@opentelemetry/semantic-conventions/incubating`, which may break in minor releases).
 */
export const SPAN_FINDING = 'stepguard.finding';
export const SPAN_STEP_UP = 'stepguard.step_up';
export const SPAN_RULES_RELOAD = 'stepguard.rules.reload';
export const SPAN_ANOMALY = 'stepguard.anomaly';
export const SPAN_FLAG = 'stepguard.flag';

export const ATTR = {
  // security_rule.* (semconv, Development)
  RULE_NAME: 'security_rule.name',
  RULE_UUID: 'security_rule.uuid',
  RULE_CATEGORY: 'security_rule.category',
  RULE_RULESET: 'security_rule.ruleset.name',
  RULE_VERSION: 'security_rule.version',
  RULE_DESCRIPTION: 'security_rule.description',
  RULE_REFERENCE: 'security_rule.reference',
  // db.* / process.* / file.* / url.*
  DB_SYSTEM_NAME: 'db.system.name',
  DB_QUERY_TEXT: 'db.query.text',
  PROCESS_COMMAND_LINE: 'process.command_line',
  FILE_PATH: 'file.path',
  URL_FULL: 'url.full',
  /** No semconv name exists for source text handed to a JavaScript compiler (`code.*` describes the caller). */
  CODE_SOURCE: 'stepguard.code',
  // issue #12 part B sinks
  /** semconv `http.response.header.<key>`: the redirect target, with the input's part redacted. */
  HTTP_LOCATION: 'http.response.header.location',
  /** XSS: up to 240 characters of the HTML chunk around the input, the input replaced by `?`. */
  HTML_EXCERPT: 'stepguard.html',
  /** Unsafe deserialization: the loader's format and the first 1 KiB of the text, the input replaced by `?`. */
  DESERIALIZE_FORMAT: 'stepguard.deserialize.format',
  DESERIALIZE_TEXT: 'stepguard.deserialize.text',
  /** XXE: the first 1 KiB of the parsed document, the input replaced by `?`. */
  XML_TEXT: 'stepguard.xml',
  /** Insecure configuration: the response head (cookie values left out) or the digest algorithm. */
  CONFIG_TEXT: 'stepguard.config',
  // request
  HTTP_METHOD: 'http.request.method',
  HTTP_ROUTE: 'http.route',
  URL_PATH: 'url.path',
  CLIENT_ADDRESS: 'client.address',
  USER_ID: 'user.id',
  CODE_STACKTRACE: 'code.stacktrace',
  // stepguard.*
  ACTION: 'stepguard.action',
  OUTCOME: 'stepguard.outcome',
  KIND: 'stepguard.kind',
  DETECTOR: 'stepguard.detector',
  REASON: 'stepguard.reason',
  SINK: 'stepguard.sink',
  OPERATION: 'stepguard.operation',
  SOURCE: 'stepguard.source',
  PAYLOAD: 'stepguard.payload',
  INCIDENT: 'stepguard.incident_id',
  MODE: 'stepguard.mode',
  STEP_UP_EVENT: 'stepguard.step_up.event',
  STEP_UP_REASON: 'stepguard.step_up.reason',
  STEP_UP_RULE: 'stepguard.step_up.rule',
  RULES_COUNT: 'stepguard.rules.count',
  RULES_RESULT: 'stepguard.rules.result',
  RULES_PROBLEMS: 'stepguard.rules.problems',
  RULES_TRIGGER: 'stepguard.rules.trigger',
  ANOMALY_KIND: 'stepguard.anomaly.kind',
  ANOMALY_EXPECTED: 'stepguard.anomaly.expected',
  ANOMALY_OBSERVED: 'stepguard.anomaly.observed',
  ANOMALY_FACTOR: 'stepguard.anomaly.factor',
  ANOMALY_WINDOW: 'stepguard.anomaly.window_seconds',
  // adaptive step-up (src/risk)
  /** low, medium or high: the level of the adaptive rule's signals. */
  RISK_LEVEL: 'stepguard.risk.level',
  /** The signals that fired, as labels (`frequency(per=user, window=600s, at_least=4)`). */
  RISK_SIGNALS: 'stepguard.risk.signals',
  /** The ACR values the challenge asked for at that level. */
  RISK_ACR: 'stepguard.risk.acr_values',
  /** true when the rule flagged the account (action `flag`). */
  RISK_FLAGGED: 'stepguard.risk.flagged',
  /** The flag span: the rule's title as the reason. */
  FLAG_REASON: 'stepguard.flag.reason',
} as const;

/** Resource attributes (semconv) of the agent's private tracer provider. */
export const RESOURCE = {
  SERVICE_NAME: 'service.name',
} as const;

/** Outcome of a finding: what the agent actually did. */
export type Outcome = 'blocked' | 'challenged' | 'reported' | 'allowed' | 'unavailable';
