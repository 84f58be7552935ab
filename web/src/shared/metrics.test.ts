import { describe, expect, it } from 'vitest'
import { parseMetrics, total } from './metrics'

describe('metrics', () => {
  const text = `# HELP anjia_http_requests_total Requests
# TYPE anjia_http_requests_total counter
anjia_http_requests_total{method="GET",route="/api/v1/orders",status="200"} 12
anjia_http_requests_total{method="POST",route="/api/v1/orders",status="500"} 2
anjia_event_log_position 38181
anjia_label_with_quote{why="say \\"hi\\""} 1`

  it('reads samples with their labels', () => {
    const samples = parseMetrics(text)
    expect(samples).toHaveLength(4)
    expect(samples[0]).toEqual({ name: 'anjia_http_requests_total', labels: { method: 'GET', route: '/api/v1/orders', status: '200' }, value: 12 })
    expect(samples[3]!.labels.why).toBe('say "hi"')
  })

  it('sums what matches', () => {
    const samples = parseMetrics(text)
    expect(total(samples, 'anjia_http_requests_total')).toBe(14)
    expect(total(samples, 'anjia_http_requests_total', (labels) => labels.status?.startsWith('5') ?? false)).toBe(2)
    expect(total(samples, 'anjia_event_log_position')).toBe(38181)
  })
})
