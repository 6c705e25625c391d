import type { Resource } from '@opentelemetry/resources';
import { RESOURCE } from './attributes.js';

/**
 * The resource every signal of the agent carries, built the same way wherever the SDK runs (the app's thread or
 * the export thread): the service name, then what OTEL_RESOURCE_ATTRIBUTES adds, with the service name kept.
 */
export function agentResource(resources: typeof import('@opentelemetry/resources'), serviceName: string): Resource {
  return resources
    .resourceFromAttributes({ [RESOURCE.SERVICE_NAME]: serviceName })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }))
    .merge(resources.resourceFromAttributes({ [RESOURCE.SERVICE_NAME]: serviceName }));
}

/** The configured service name, else OTEL_SERVICE_NAME, else OpenTelemetry's `unknown_service:<program>`. */
export function serviceNameOf(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return configured ?? env.OTEL_SERVICE_NAME ?? `unknown_service:${process.argv0 ?? 'node'}`;
}
