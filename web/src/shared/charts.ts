// ECharts, with only the chart types and components the apps draw (not the whole library).
import { use } from 'echarts/core'
import { CanvasRenderer } from 'echarts/renderers'
import { BarChart, LineChart, PieChart } from 'echarts/charts'
import {
  DatasetComponent,
  GridComponent,
  LegendComponent,
  TitleComponent,
  TooltipComponent,
} from 'echarts/components'

use([
  CanvasRenderer,
  BarChart,
  LineChart,
  PieChart,
  DatasetComponent,
  GridComponent,
  LegendComponent,
  TitleComponent,
  TooltipComponent,
])

export { default as VChart } from 'vue-echarts'

/** The apps' chart colours: the brand green first. */
export const palette = ['#1f7a5c', '#3b82f6', '#f59e0b', '#ef4444', '#8b5cf6', '#14b8a6']

export interface Series {
  name: string
  type: 'line' | 'bar'
  data: (number | null)[]
  yAxisIndex?: number
  stack?: string
}

/**
 * The apps' usual chart: categories along the bottom, one or more series, the legend on top.
 * `yAxis` defaults to one value axis; `left` makes room for wide labels (money).
 */
export function seriesChart(categories: string[], series: Series[], options: { yAxis?: object | object[]; left?: number } = {}) {
  return {
    color: palette,
    tooltip: { trigger: 'axis' },
    legend: series.length > 1 ? { top: 0, data: series.map((one) => one.name) } : undefined,
    grid: { left: options.left ?? 48, right: 24, top: series.length > 1 ? 40 : 16, bottom: 32, containLabel: false },
    xAxis: { type: 'category', data: categories },
    yAxis: options.yAxis ?? { type: 'value', minInterval: 1 },
    series: series.map((one) => ({ smooth: one.type === 'line', barMaxWidth: 40, ...one })),
  }
}
